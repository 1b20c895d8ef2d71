/*
 * shoal plugin ABI — the whole contract between shoald (the host) and a plugin.
 *
 * Only C types cross this boundary: fixed-width integers, {pointer, length} strings,
 * function pointers and opaque handles. No exception, no C++ or library type crosses it.
 *
 * Evolution rules (what makes the ABI stable):
 *   - Every table begins with `struct_size` (sizeof the struct as the side that fills it
 *     was compiled) followed, for the two top-level tables, by the ABI version.
 *   - Fields are only ever appended. A minor version adds fields; a major version is a
 *     break. Each side reads only the fields that the other side's `struct_size` covers.
 *   - The host refuses a plugin whose ABI major differs from its own, or whose tables are
 *     larger than the host knows (the plugin was built for a newer minor and relies on it).
 *
 * Names say direction:
 *   - `shoal_host_api.callback_*`   implemented by the host, called by the plugin;
 *   - `*_on_*` function pointers     implemented by the plugin, called by the host.
 *
 * Ownership, for every pointer in this file:
 *   - A `shoal_str` passed as an argument is borrowed: valid only for the duration of the
 *     call. Whoever receives it copies what it wants to keep. It need not be NUL-terminated.
 *   - A `shoal_buffer` filled by the host is owned by the caller after return and must be
 *     released with `callback_buffer_free` (the host's allocator, never free()).
 *   - Descriptors passed to `callback_register_*` are copied by the host during the call;
 *     the plugin may free or reuse them afterwards. The `user` pointer inside them is the
 *     plugin's and must stay valid until `on_shutdown` returns.
 *   - `shoal_plugin_api` returned by the entry point is owned by the plugin and must stay
 *     valid until `on_shutdown` returns. The host keeps the library loaded until then.
 *   - Opaque handles (`shoal_plugin_ctx`, `shoal_reply`, `shoal_txn`) are owned by the host.
 *
 * Threads: the host may call a plugin's callbacks from several threads at once; a plugin
 * that keeps mutable state guards it. Host callbacks are safe to call from any thread,
 * except that a `shoal_txn` belongs to the thread that began it.
 */
#ifndef SHOAL_ABI_H
#define SHOAL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_ABI_VERSION_MAJOR 1
#define SHOAL_ABI_VERSION_MINOR 5

/* The one symbol a plugin exports. */
#define SHOAL_PLUGIN_ENTRY_SYMBOL "shoal_plugin_entry"

#if defined(__GNUC__)
#define SHOAL_EXPORT __attribute__((visibility("default")))
#else
#define SHOAL_EXPORT
#endif

/* ---- basic types -------------------------------------------------------------------- */

/* Borrowed text: `data` points at `len` bytes of UTF-8, not necessarily NUL-terminated. */
typedef struct shoal_str {
  const char* data;
  size_t len;
} shoal_str;

/* Host-allocated bytes handed to the plugin; release with callback_buffer_free.
 * The host always adds a NUL after `len` bytes, so `data` can be read as a C string. */
typedef struct shoal_buffer {
  char* data;
  size_t len;
} shoal_buffer;

/* Outcome of a call in either direction. Values are stable; new ones may be appended. */
typedef enum shoal_status {
  SHOAL_OK = 0,
  SHOAL_ERR_INVALID_ARGUMENT = 1, /* the input was rejected; the message says which field */
  SHOAL_ERR_NOT_FOUND = 2,        /* the named thing does not exist */
  SHOAL_ERR_CONFLICT = 3,         /* the name is taken, or a concurrent change won */
  SHOAL_ERR_UNSUPPORTED = 4,      /* the other side does not offer this */
  SHOAL_ERR_FAILED = 5,           /* the operation ran and failed; the message says why */
  SHOAL_ERR_EXCEPTION = 6,        /* a C++ exception was caught at the boundary */
  SHOAL_ERR_INTERNAL = 7,         /* a fault of the host (store unreachable, out of memory) */
  SHOAL_ERR_METHOD_NOT_ALLOWED = 8 /* added in ABI 1.3: the API path exists, the method not */
} shoal_status;

typedef enum shoal_log_level {
  SHOAL_LOG_ERROR = 3,
  SHOAL_LOG_WARNING = 4,
  SHOAL_LOG_INFO = 6,
  SHOAL_LOG_DEBUG = 7
} shoal_log_level;

/* Opaque host objects. */
typedef struct shoal_plugin_ctx shoal_plugin_ctx; /* one per loaded plugin */
typedef struct shoal_reply shoal_reply;           /* where a plugin callback writes its answer */
typedef struct shoal_txn shoal_txn;               /* an open document-store transaction */

/* ---- contributions a plugin registers ------------------------------------------------ */

/* Added in ABI 1.3. What the node applying a delivery knows about it, as on_apply_ctx
 * receives it. Filled by the host: read only the fields `struct_size` covers. */
typedef struct shoal_apply_context {
  uint32_t struct_size;
  uint32_t attempt;      /* 1 on the first try, 2 on the first retry, ... */
  int64_t command_id;    /* the command's id: the same on every node it is delivered to */
  int64_t delivery_id;   /* this node's delivery of it: unique in the cluster */
  int64_t node_id;       /* the node applying it */
  shoal_str kind;        /* the command's kind, e.g. "http.vhost.put" */
  shoal_str ordering_key; /* commands of one key are applied one at a time, in order */
} shoal_apply_context;

/* A kind of Command Queue command that this plugin executes on a node, e.g. "http.vhost.put".
 * Kinds are globally unique: a second registration of the same kind is refused. */
typedef struct shoal_queue_handler_desc {
  uint32_t struct_size;
  shoal_str kind;        /* lower-case dotted name: [a-z0-9_-]+(\.[a-z0-9_-]+)+ */
  shoal_str description; /* one line for people */
  void* user;            /* passed back to the callbacks */
  /* Optional (may be NULL). Called where the command is enqueued, before it is stored, to
   * refuse a bad payload early. Return SHOAL_OK, or an error with a message in `reply`. */
  shoal_status (*on_validate)(void* user, shoal_str payload_json, shoal_reply* reply);
  /* Apply the command on this node. Text appended to `reply` becomes the delivery's
   * output. Must be idempotent: a command may be re-applied after a crash. Required up to
   * ABI 1.2; from 1.3 on, one of on_apply and on_apply_ctx is required. */
  shoal_status (*on_apply)(void* user, shoal_str payload_json, shoal_reply* reply);
  /* Added in ABI 1.3; optional. on_apply with the delivery's identity, so the handler can
   * make itself idempotent (remember the command ids it has applied) or log what it does.
   * `context` is the host's and valid only during the call. When it is set (and the
   * plugin's struct_size covers it) the host calls it instead of on_apply. */
  shoal_status (*on_apply_ctx)(void* user, const shoal_apply_context* context,
                               shoal_str payload_json, shoal_reply* reply);
} shoal_queue_handler_desc;


typedef enum shoal_probe_kind {
  SHOAL_PROBE_TCP = 1, /* connect (optionally TLS), then each step: send, expect */
  SHOAL_PROBE_HTTP = 2 /* connect (optionally TLS), send a request, expect a status */
} shoal_probe_kind;

/* One exchange of a TCP probe: `send` is written (if non-empty), then the probe reads until
 * the received text starts with `expect` (if non-empty) or the timeout passes. */
typedef struct shoal_probe_step {
  shoal_str send;
  shoal_str expect;
} shoal_probe_step;

/* How the kernel's health engine checks this plugin's service on a node. The engine runs
 * the probe; the plugin only describes it. One probe per service name. */
typedef struct shoal_probe_desc {
  uint32_t struct_size;
  shoal_str service; /* the balanced service this probe checks, e.g. "http", "smtp" */
  uint32_t kind;     /* a shoal_probe_kind */
  uint16_t port;     /* TCP port on the node */
  uint8_t use_tls;   /* 1 = TLS handshake after connect (certificate not verified) */
  uint8_t reserved0;
  uint32_t interval_ms; /* time between probes; 0 = engine default */
  uint32_t timeout_ms;  /* per probe; 0 = engine default */
  uint32_t rise;        /* consecutive successes to become healthy; 0 = default */
  uint32_t fall;        /* consecutive failures to become unhealthy; 0 = default */
  const shoal_probe_step* steps; /* SHOAL_PROBE_TCP: `step_count` exchanges */
  size_t step_count;
  shoal_str http_method; /* SHOAL_PROBE_HTTP: e.g. "GET" */
  shoal_str http_path;   /* SHOAL_PROBE_HTTP: e.g. "/" */
  shoal_str http_host;   /* SHOAL_PROBE_HTTP: Host header; empty = the node's address */
  uint32_t http_expect_status; /* SHOAL_PROBE_HTTP: e.g. 200 */

  /* ---- added in ABI 1.3 (read only when struct_size covers it) ---- */

  /* The daemon that serves this service on a node, e.g. "nginx" for both "http" and
   * "https", "dovecot" for "imap" and "pop3": [a-z0-9_.-]{1,64}, or empty when the
   * service has a daemon of its own. Services whose probes name the same daemon share it:
   * a rolling restart of one of them drains all of them on the node, restarts, waits until
   * every one of them is healthy, and only then restores them all. */
  shoal_str daemon;
} shoal_probe_desc;

/* A page section in the web panel. The panel is declarative: `definition_json` describes
 * it and the panel's own code renders it, escaping every value; a plugin never sends markup
 * or script. The definition is a JSON object:
 *   { "title": "...", "sections": [ { "id": "...", "type": "table|form|action|graph|text",
 *                                     "title": "...", ... } ] }
 * <shoal/panel.h> describes every section type and field, and what the host refuses. The
 * host validates the definition at registration and refuses a malformed one (the plugin
 * with it). */
typedef struct shoal_panel_desc {
  uint32_t struct_size;
  shoal_str id;              /* unique within the plugin: [a-z0-9_-]+ */
  shoal_str definition_json; /* see above */
  void* user;
  /* Optional. Data for one section, as JSON, appended to `reply`. `query_json` carries the
   * panel's parameters (paging, filters) as a JSON object. */
  shoal_status (*on_data)(void* user, shoal_str section_id, shoal_str query_json,
                          shoal_reply* reply);
  /* Optional. Run an action or submit a form. `input_json` is a JSON object of the
   * fields. A validation failure returns SHOAL_ERR_INVALID_ARGUMENT with a message. */
  shoal_status (*on_action)(void* user, shoal_str action_id, shoal_str input_json,
                            shoal_reply* reply);
} shoal_panel_desc;

/* A subscription to kernel events. Known events in this ABI version:
 *   account.created    account.changed      account.removed
 *   account.suspended  account.unsuspended  domain.added     domain.removed
 *   node.joined        node.left            health.changed
 * health.changed (on the manager) carries the object callback_health_list describes, plus
 * "previous": the state before. It is sent when a probe's state changes and when a service
 * on a node enters or leaves maintenance (a rolling restart drains it first); "serving" is
 * false while the service must receive no new connections. Every state change of a probe
 * reaches every hook once, in the order it happened for that (node, service), as soon as
 * the probe decided it; "state" is the state of that change.
 * node.joined and node.left (on the manager) carry
 *   {"reason": "...", "node": {the node as GET /v1/nodes/{id} shows it: "id", "hostname",
 *    "address", "roles", "state", "os_id", "os_version", "arch", ...}}
 * node.joined reasons: "enrolled" (a new node used its join token), "returned" (an offline
 * node was heard from again). node.left reasons: "offline" (no contact for the manager's
 * offline time), "removed" (an admin removed it; also after "offline"). Draining is neither.
 * account.created, account.changed, account.suspended, account.unsuspended and
 * account.removed (on the manager; suspended and unsuspended added in ABI 1.5) carry
 *   {"account": {the account's whole desired state, the one representation of
 *    docs/adr/0013-hosting-accounts.md: "name", "uid", "gid", "home", "state",
 *    "suspend_reason", "plan", "limits", "domains", "certificate", "revision", ...}}
 * account.removed carries the state the account had when it was removed. domain.added and
 * domain.removed (ABI 1.5) carry the same plus "domain": "<the domain's punycode name>":
 * after domain.added the account's "domains" lists it; after domain.removed it no longer
 * does. The kernel owns the account: a plugin renders its own service's objects from the
 * state it receives and never writes an account. On create and change the kernel has
 * enqueued the account's identity (account.identity.put, ordering key "account:<name>")
 * before the hook runs; on removal the hook runs first and account.identity.remove is
 * enqueued after every hook, so a plugin's commands about an account, enqueued with the
 * same ordering key, reach each node between the two.
 * Hooks run one at a time, in the order events happened.
 * Registering any other name is refused. */
typedef struct shoal_hook_desc {
  uint32_t struct_size;
  shoal_str event;
  void* user;
  /* Required. `payload_json` describes the event. An error is logged with its message;
   * it does not stop other hooks. */
  shoal_status (*on_event)(void* user, shoal_str event, shoal_str payload_json,
                           shoal_reply* reply);
} shoal_hook_desc;

/* Added in ABI 1.1. An HTTP endpoint of the manager's API that the plugin serves: every
 * request to /v1/plugins/<plugin name>/<path> (any method) reaches `on_request`, after the
 * host has authenticated it as an admin. `path` is what follows the plugin's name, without
 * a leading slash ("services/tcp:192.0.2.10:80"), percent-decoded; `query` is the raw query
 * string; `body` the request body (JSON for POST/PUT, empty otherwise). Text appended to
 * `reply` is the JSON response body. The status becomes the HTTP status: SHOAL_OK 200 (201
 * for POST), INVALID_ARGUMENT 400, NOT_FOUND 404, CONFLICT 409, UNSUPPORTED 501, FAILED 422,
 * METHOD_NOT_ALLOWED 405 (ABI 1.3), anything else 500; the reply's error message is sent as
 * {"error": {"code", "message"}}. From ABI 1.3 on, callback_reply_set_http_status chooses
 * another status from a documented set (202, 204, 429, 503, ...).
 * One endpoint per plugin. Runs on the manager only. */
typedef struct shoal_api_desc {
  uint32_t struct_size;
  void* user;
  shoal_status (*on_request)(void* user, shoal_str method, shoal_str path, shoal_str query,
                             shoal_str body, shoal_reply* reply);
} shoal_api_desc;

/* Added in ABI 1.3. Samples the plugin adds to the manager's /metrics. `on_collect` is
 * called on every scrape (from the scraping thread; keep it quick, never block on the
 * network) and appends to `reply` a JSON array of samples:
 *   [{"name": "policies_failing",        [a-z_][a-z0-9_]{0,63}, without the prefix; not
 *                                        connections_total, packets_total, bytes_total or
 *                                        last_sample_seconds (the host's names for the
 *                                        plugin's statistics series, see callback_stats_emit)
 *     "type": "gauge" | "counter",       one type per name
 *     "help": "Policies the director...", one line, the same for every sample of a name
 *     "labels": {"policy": "tcp:..."},   optional; names [a-z_][a-z0-9_]{0,31}, not
 *                                        starting "__"; values strings up to 200 bytes
 *     "value": 3}]                        a number; a counter never negative
 * The host renders them as the families shoal_<plugin>_<name> (a '-' in the plugin's name
 * becomes '_'), escaping every label value. When the answer is not such an array, or the
 * call fails, the plugin's families are left out of that scrape and a line is logged;
 * /metrics itself is never broken by a plugin. At most one per plugin; manager only (a node
 * never calls it). */
typedef struct shoal_metrics_desc {
  uint32_t struct_size;
  void* user;
  shoal_status (*on_collect)(void* user, shoal_reply* reply);
} shoal_metrics_desc;

/* Added in ABI 1.3. How many connections the plugin's dataplane holds open to one node, so
 * that `shoalctl node drain --wait` can tell when a drained node is empty. Runs on the
 * manager only; the host sums the answers of every plugin that registered one.
 * `node_json` is {"id": 3, "address": "10.0.0.11", "hostname": "web1"}. The plugin appends
 * to `reply` a JSON object:
 *   {"connections": 3,
 *    "detail": [{"service": "http", "where": "tcp:10.0.0.1:80", "active": 2, "inactive": 1}]}
 * where "connections" is the sum of active + inactive over "detail"; or, when it cannot
 * know (its dataplane runs in another process), {"connections": null, "reason": "..."}:
 * the host then reports the node's count as unknown, never as 0. */
typedef struct shoal_connections_desc {
  uint32_t struct_size;
  void* user;
  shoal_status (*on_node_connections)(void* user, shoal_str node_json, shoal_reply* reply);
} shoal_connections_desc;

/* Added in ABI 1.5. A limit dimension of hosting accounts that this plugin declares, so that
 * plans and accounts can set it and the kernel can enforce it. The kernel knows no dimension
 * by name: every one comes from a plugin. Its full name is "<plugin name>.<dimension>"
 * (e.g. "http.domains"); an account's "limits" object is keyed by full names, each a whole
 * number >= 0 or null (unlimited). The kernel owns the limits' values and every refusal:
 * a plugin declares what a dimension counts, never the number an account may have. */
typedef struct shoal_limit_desc {
  uint32_t struct_size;
  shoal_str dimension; /* [a-z][a-z0-9_]{0,31}, unique within the plugin */
  shoal_str label;     /* one line for people, at most 64 bytes: "Domains", "Disk space (MB)" */
  /* What is counted. "domains": a kernel object kind the kernel counts itself (the
   * account's domains, of every kind), so the kernel refuses the domain that would exceed
   * the limit and the plugin does nothing. Empty: the plugin counts its own objects and asks
   * before it creates one, through callback_limit_check. No other value is accepted. */
  shoal_str counts;
} shoal_limit_desc;

/* ---- what the host offers ------------------------------------------------------------ */

/* Functions that can fail take `shoal_buffer* out_error` (may be NULL). On failure the host
 * fills it with a message the caller releases with callback_buffer_free. */
typedef struct shoal_host_api {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  shoal_str host_version; /* shoald's version, e.g. "0.1.0" */

  /* Release a buffer the host filled. NULL or an empty buffer is accepted. */
  void (*callback_buffer_free)(shoal_buffer* buffer);

  /* Write a line to shoald's log, attributed to the plugin. */
  void (*callback_log)(shoal_plugin_ctx* ctx, uint32_t level, shoal_str message);

  /* Read a configuration value of this plugin: key "k" is `k` in section [plugin.NAME] of
   * shoald's configuration. SHOAL_ERR_NOT_FOUND when unset (out_value untouched). */
  shoal_status (*callback_config_get)(shoal_plugin_ctx* ctx, shoal_str key,
                                      shoal_buffer* out_value, shoal_buffer* out_error);

  /* Answers from plugin callbacks. `reply_append` adds to the output (data, command
   * output); `reply_set_error` sets the message that explains a non-OK status. */
  void (*callback_reply_append)(shoal_reply* reply, shoal_str text);
  void (*callback_reply_set_error)(shoal_reply* reply, shoal_str message);

  /* Registration into the kernel's registries. Valid only during `on_init`: contributions
   * take effect together when init returns SHOAL_OK, and none of them do otherwise. */
  shoal_status (*callback_register_queue_handler)(shoal_plugin_ctx* ctx,
                                                  const shoal_queue_handler_desc* desc,
                                                  shoal_buffer* out_error);
  shoal_status (*callback_register_probe)(shoal_plugin_ctx* ctx, const shoal_probe_desc* desc,
                                          shoal_buffer* out_error);
  shoal_status (*callback_register_panel)(shoal_plugin_ctx* ctx, const shoal_panel_desc* desc,
                                          shoal_buffer* out_error);
  shoal_status (*callback_register_hook)(shoal_plugin_ctx* ctx, const shoal_hook_desc* desc,
                                         shoal_buffer* out_error);

  /* The document store: JSON documents in the plugin's own namespace, addressed by
   * (collection, key); collection and key are [A-Za-z0-9_.:-]{1,128} and [^\0]{1,255}.
   * Every access happens in a transaction: all of it is committed, or none of it.
   * A txn not committed is rolled back by txn_end. Not available during on_init.
   * Scope: the store is the process's own. On the manager it is the manager's store (the
   * cluster's database); on a node it is that node's local store. Nothing replicates
   * between them: what a node writes the manager never sees, and what the manager writes
   * no node sees. To hand state to nodes, enqueue a command carrying it; to learn what a
   * node did, read the command's deliveries (callback_command_get, ABI 1.3). */
  shoal_status (*callback_txn_begin)(shoal_plugin_ctx* ctx, shoal_txn** out_txn,
                                     shoal_buffer* out_error);
  /* Commit and free the transaction; on failure nothing was written. The handle is
   * invalid afterwards either way. */
  shoal_status (*callback_txn_commit)(shoal_txn* txn, shoal_buffer* out_error);
  /* Roll back (if not committed) and free the transaction. */
  void (*callback_txn_end)(shoal_txn* txn);
  /* SHOAL_ERR_NOT_FOUND when absent. On success `out_json` holds the document and
   * `out_revision` (may be NULL) its revision, which starts at 1 and grows by one per put. */
  shoal_status (*callback_doc_get)(shoal_txn* txn, shoal_str collection, shoal_str key,
                                   shoal_buffer* out_json, int64_t* out_revision,
                                   shoal_buffer* out_error);
  /* Create or replace. `json` must be a valid JSON value (SHOAL_ERR_INVALID_ARGUMENT if
   * not). If `expected_revision` >= 0 the put succeeds only when the stored revision equals
   * it (0 = must not exist yet), else SHOAL_ERR_CONFLICT. -1 = unconditional. */
  shoal_status (*callback_doc_put)(shoal_txn* txn, shoal_str collection, shoal_str key,
                                   shoal_str json, int64_t expected_revision,
                                   int64_t* out_revision, shoal_buffer* out_error);
  /* SHOAL_ERR_NOT_FOUND when absent. */
  shoal_status (*callback_doc_delete)(shoal_txn* txn, shoal_str collection, shoal_str key,
                                      shoal_buffer* out_error);
  /* Visit the documents of a collection whose key starts with `key_prefix` (may be empty),
   * in key order. `visit` returning non-zero stops early. Strings are borrowed. */
  shoal_status (*callback_doc_list)(shoal_txn* txn, shoal_str collection, shoal_str key_prefix,
                                    int (*visit)(void* visit_user, shoal_str key, shoal_str json,
                                                 int64_t revision),
                                    void* visit_user, shoal_buffer* out_error);

  /* ---- added in ABI 1.1 (check struct_size before calling) ---- */

  /* Facts about the process the plugin runs in, as a JSON object:
   *   {"role": "manager" | "node", "node_id": 3 (0 when not enrolled yet),
   *    "data_dir": "/var/lib/shoal", "host_version": "0.2.0"}
   * A manager that is also AppServer0 reports role "manager" and its own node_id. */
  shoal_status (*callback_host_info)(shoal_plugin_ctx* ctx, shoal_buffer* out_json,
                                     shoal_buffer* out_error);
  /* Put a command into the Command Queue. Manager only (SHOAL_ERR_UNSUPPORTED elsewhere).
   * `request_json` is an enqueue request, the one format POST /v1/commands also takes:
   *   {"kind": "lvs.apply",          required; a kind some plugin registered
   *    "payload": {...},             optional (default {}): any JSON value, or a string
   *                                  holding the JSON text of one
   *    "key": "lvs",                 optional ordering key (default: the kind); commands of
   *                                  one key are applied one at a time, in order
   *    "target": {"all": true} | {"role": "director"} | {"node": 3},  required
   *    "stagger_ms": 1000}           optional (0 to 60000, default 0): the deliveries, in
   *                                  node id order, become due now + i * stagger_ms, so the
   *                                  nodes apply (and reload) one after another
   * No other field is accepted; a missing or malformed field (a target that is not exactly
   * one of the three forms, {"all": false}, a node id that is not a positive integer) is
   * SHOAL_ERR_INVALID_ARGUMENT naming it. {"commands": [request, ...]} enqueues 1 to 1000
   * requests at once, all or none. The kind's on_validate runs first for every request.
   * On success `out_json` holds {"id": 17, "deliveries": 2} (a batch:
   *   {"commands": [{"id": 17, "deliveries": 2}, ...]} in the order given).
   * Commands that a hook enqueues while it handles `health.changed` for a rolling restart
   * are awaited by that restart before it goes on: a drain is in force before the service
   * is restarted, and a restore before the next node is drained. */
  shoal_status (*callback_enqueue)(shoal_plugin_ctx* ctx, shoal_str request_json,
                                   shoal_buffer* out_json, shoal_buffer* out_error);
  /* The health of every probed service on every node, as a JSON array of
   *   {"node_id": "3", "address": "10.0.0.11", "service": "http", "port": 80,
   *    "state": "healthy" | "unhealthy" | "unknown", "maintenance": false,
   *    "serving": true, "reason": "..."}
   * (the same objects `health.changed` events carry). Manager only. */
  shoal_status (*callback_health_list)(shoal_plugin_ctx* ctx, shoal_buffer* out_json,
                                       shoal_buffer* out_error);
  /* Register the plugin's API endpoint (see shoal_api_desc). Only during on_init. */
  shoal_status (*callback_register_api)(shoal_plugin_ctx* ctx, const shoal_api_desc* desc,
                                        shoal_buffer* out_error);

  /* ---- added in ABI 1.2 (check struct_size before calling) ---- */

  /* Hand statistics samples to the kernel, which records them in RRD files on the manager
   * (a node forwards them to its manager in the background) and shows them in the panel's
   * graphs and on /metrics. `samples_json` is a JSON array of objects:
   *   {"series": "service.3f2a9c1e",   [A-Za-z0-9._:-]{1,160}; the host prefixes it with
   *                                     "<plugin name>." so plugins never collide
   *    "time": 1764100000,             Unix seconds the counters were read (0 or absent = now)
   *    "title": "tcp:192.0.2.10:80",   optional: how graphs and /metrics name the series
   *    "labels": {"service": "..."},   optional: string labels for /metrics
   *    "conns": 10, "packets_in": 0, "packets_out": 0, "bytes_in": 0, "bytes_out": 0}
   * The five counters are totals that only grow (a reset to zero is recorded as unknown for
   * that step, never as a negative rate); all five are required. A sample not newer than the
   * series' last one is ignored. The call validates every sample first and records none of
   * them when one is malformed (SHOAL_ERR_INVALID_ARGUMENT naming it). It never waits on
   * the network. From ABI 1.3 on, /metrics shows a plugin's series in families named for
   * it: shoal_<plugin>_connections_total, _packets_total, _bytes_total (with a "direction"
   * label) and _last_sample_seconds, labelled with "series", "title" and the labels given. */
  shoal_status (*callback_stats_emit)(shoal_plugin_ctx* ctx, shoal_str samples_json,
                                      shoal_buffer* out_error);

  /* ---- added in ABI 1.3 (check struct_size before calling) ---- */

  /* Choose the HTTP status of an API reply (shoal_api_desc.on_request), instead of the one
   * its shoal_status maps to. Valid only on the reply of on_request; any other reply is
   * SHOAL_ERR_UNSUPPORTED. Codes accepted: with SHOAL_OK returned, 200 201 202 204 (204
   * sends no body); with an error returned, 400 403 404 405 409 410 412 422 429 503. Any
   * other code is SHOAL_ERR_INVALID_ARGUMENT and leaves the status as it was. A success code
   * set on a reply whose callback then fails (or an error code on one that succeeds) is
   * ignored: the returned shoal_status decides. */
  shoal_status (*callback_reply_set_http_status)(shoal_reply* reply, uint32_t http_status);
  /* One command of the Command Queue with its deliveries, so a plugin can learn what became
   * of what it enqueued. Manager only. `out_json`:
   *   {"id": 17, "kind": "lvs.apply", "payload": "{...}" (its JSON text),
   *    "ordering_key": "lvs", "target": "all" | "node:3" | "role:director",
   *    "created_at_ms": ..., "deliveries": [{"id": 40, "node_id": 3,
   *      "state": "pending" | "running" | "done" | "failed" | "skipped", "attempts": 2,
   *      "output": "what on_apply answered", "finished_at_ms": ... | null, ...}]}
   * (the object GET /v1/commands/{id} answers). SHOAL_ERR_NOT_FOUND for an unknown id. */
  shoal_status (*callback_command_get)(shoal_plugin_ctx* ctx, int64_t command_id,
                                       shoal_buffer* out_json, shoal_buffer* out_error);
  /* Register the plugin's contribution to /metrics (see shoal_metrics_desc). Only during
   * on_init; at most one per plugin. */
  shoal_status (*callback_register_metrics)(shoal_plugin_ctx* ctx,
                                            const shoal_metrics_desc* desc,
                                            shoal_buffer* out_error);
  /* Register the plugin's connection counter (see shoal_connections_desc). At most one per
   * plugin; only during on_init. */
  shoal_status (*callback_register_connections)(shoal_plugin_ctx* ctx,
                                                const shoal_connections_desc* desc,
                                                shoal_buffer* out_error);

  /* ---- added in ABI 1.4 (check struct_size before calling) ---- */

  /* Declare the statistics series this plugin's nodes may report, so that the manager
   * records only those: `series_json` is a JSON array of series names as callback_stats_emit
   * takes them (without the "<plugin name>." prefix), e.g. ["service.tcp:192.0.2.10:80"];
   * each call replaces the plugin's previous declaration ([] declares none). Once a plugin
   * has declared, a sample a node forwards for any other series of it is refused, naming the
   * series, and creates no file; the series already recorded keep their history. A plugin
   * that never declares has its nodes' samples recorded within a cap shared by every such
   * plugin. Samples emitted in the manager's own process are not checked against the
   * declaration. Either way a plugin has at most the manager's stats_max_series_per_plugin
   * series: a longer declaration is SHOAL_ERR_INVALID_ARGUMENT and changes nothing.
   * Manager only: SHOAL_ERR_UNSUPPORTED on a node. */
  shoal_status (*callback_stats_declare)(shoal_plugin_ctx* ctx, shoal_str series_json,
                                         shoal_buffer* out_error);

  /* ---- added in ABI 1.5 (check struct_size before calling) ---- */

  /* Declare a limit dimension of hosting accounts (see shoal_limit_desc). Only during
   * on_init; like every registration it takes effect when init succeeds. A field out of its
   * grammar (dimension, label, counts) is SHOAL_ERR_INVALID_ARGUMENT naming the field; a
   * second declaration of the same dimension by the plugin is SHOAL_ERR_CONFLICT. Declared
   * on every process the plugin loads in, so nodes and manager agree on the names; only the
   * manager enforces them. */
  shoal_status (*callback_register_limit)(shoal_plugin_ctx* ctx, const shoal_limit_desc* desc,
                                          shoal_buffer* out_error);
  /* Ask the kernel whether `account` may have `would_have` (>= 0) objects of this plugin's
   * `dimension` (the short name, as declared: "disk_mb", not "http.disk_mb"), before the
   * plugin creates the object that brings the count there. The plugin counts; the kernel
   * holds the account's limit and answers:
   *   SHOAL_OK                    within the limit (or the limit is null: unlimited);
   *   SHOAL_ERR_CONFLICT          over it, with the kernel's message, the one every refusal
   *                               of a limit carries and that the plugin passes on unchanged
   *                               (an API reply of CONFLICT becomes HTTP 409):
   *                               "account 'acme' is at its limit of 3 for http.domains (Domains)";
   *   SHOAL_ERR_NOT_FOUND         no such account, or the plugin declared no such dimension;
   *   SHOAL_ERR_INVALID_ARGUMENT  an empty account name or a negative would_have.
   * The answer is advice at that instant, not a reservation: two concurrent creations may
   * both be told SHOAL_OK. Manager only: SHOAL_ERR_UNSUPPORTED on a node or in a process
   * that holds no accounts. */
  shoal_status (*callback_limit_check)(shoal_plugin_ctx* ctx, shoal_str account, shoal_str dimension,
                                       int64_t would_have, shoal_buffer* out_error);
} shoal_host_api;

/* ---- what the plugin provides -------------------------------------------------------- */

typedef struct shoal_plugin_api {
  uint32_t struct_size;
  uint16_t abi_major; /* SHOAL_ABI_VERSION_MAJOR the plugin was built with */
  uint16_t abi_minor; /* SHOAL_ABI_VERSION_MINOR the plugin was built with */
  shoal_str name;     /* unique in the cluster: [a-z][a-z0-9_-]{0,63} */
  shoal_str version;  /* the plugin's own version, e.g. "1.2.0" */
  shoal_str description;
  void* instance; /* passed back to on_init and on_shutdown */
  /* Called once after the ABI is accepted. Register contributions here through `host`.
   * Return SHOAL_OK, or an error with a message in `reply`: the plugin is then refused and
   * nothing it registered takes effect. */
  shoal_status (*on_init)(void* instance, shoal_plugin_ctx* ctx, shoal_reply* reply);
  /* Called once before the host stops (also after a failed init). After it returns, the
   * host may unload the library: no thread of the plugin may still be running. */
  void (*on_shutdown)(void* instance);
} shoal_plugin_api;

/* The entry point, exported as SHOAL_PLUGIN_ENTRY_SYMBOL. `host` stays valid until
 * on_shutdown returns. Return the plugin's descriptor, or NULL to decline (for example when
 * host->struct_size lacks a callback the plugin cannot do without). */
typedef const shoal_plugin_api* (*shoal_plugin_entry_fn)(const shoal_host_api* host);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHOAL_ABI_H */
