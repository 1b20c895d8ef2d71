/* A plugin written in plain C against the frozen ABI 1.4 header only (not sdk/). It must
 * load into every later 1.x shoald and keep working: its 1.4-sized host table view reaches
 * 1.3's on_apply_ctx and metrics and 1.4's stats_declare, and its descriptors of 1.4 size are
 * taken as they are. */
#include <shoal/abi.h>
#include <stdio.h>
#include <string.h>

static const shoal_host_api* host;
static shoal_plugin_ctx* context;

#define STR(literal) ((shoal_str){literal, sizeof(literal) - 1})

/* Answers "<kind> attempt <n>: <payload>", so a test sees the apply context arrived. */
static shoal_status compat_on_apply_ctx(void* user, const shoal_apply_context* apply, shoal_str payload,
                                        shoal_reply* reply) {
  (void)user;
  char attempt[32];
  int written = snprintf(attempt, sizeof attempt, " attempt %u: ", (unsigned)apply->attempt);
  host->callback_reply_append(reply, apply->kind);
  host->callback_reply_append(reply, (shoal_str){attempt, (size_t)written});
  host->callback_reply_append(reply, payload);
  return SHOAL_OK;
}

static shoal_status compat_on_collect(void* user, shoal_reply* reply) {
  (void)user;
  host->callback_reply_append(
      reply, STR("[{\"name\": \"up\", \"type\": \"gauge\", \"help\": \"1.4 plugin is up\", \"value\": 1}]"));
  return SHOAL_OK;
}

/* GET: {"abi": "1.4"}. POST declare: declares one statistics series (the host answers
 * UNSUPPORTED off a manager). Anything else: CONFLICT with a message. */
static shoal_status compat_on_request(void* user, shoal_str method, shoal_str path, shoal_str query,
                                      shoal_str body, shoal_reply* reply) {
  (void)user; (void)query; (void)body;
  if (method.len == 3 && memcmp(method.data, "GET", 3) == 0) {
    host->callback_reply_append(reply, STR("{\"abi\": \"1.4\"}"));
    return SHOAL_OK;
  }
  if (path.len == 7 && memcmp(path.data, "declare", 7) == 0) {
    shoal_buffer error = {NULL, 0};
    shoal_status status = host->callback_stats_declare(context, STR("[\"compat\"]"), &error);
    if (status != SHOAL_OK) host->callback_reply_set_error(reply, (shoal_str){error.data, error.len});
    host->callback_buffer_free(&error);
    return status;
  }
  host->callback_reply_set_error(reply, STR("compat 1.4 refuses this on purpose"));
  return SHOAL_ERR_CONFLICT;
}

static shoal_status compat_on_init(void* instance, shoal_plugin_ctx* ctx, shoal_reply* reply) {
  (void)instance;
  context = ctx;
  if (host->struct_size < offsetof(shoal_host_api, callback_stats_declare) + sizeof host->callback_stats_declare) {
    host->callback_reply_set_error(reply, STR("needs a host of ABI 1.4"));
    return SHOAL_ERR_UNSUPPORTED;
  }
  shoal_queue_handler_desc handler;
  memset(&handler, 0, sizeof handler);
  handler.struct_size = sizeof handler;
  handler.kind = STR("compat14.echo");
  handler.description = STR("answers with its kind, attempt and payload");
  handler.on_apply_ctx = compat_on_apply_ctx;

  shoal_api_desc api;
  memset(&api, 0, sizeof api);
  api.struct_size = sizeof api;
  api.on_request = compat_on_request;

  shoal_metrics_desc metrics;
  memset(&metrics, 0, sizeof metrics);
  metrics.struct_size = sizeof metrics;
  metrics.on_collect = compat_on_collect;

  shoal_status status;
  if ((status = host->callback_register_queue_handler(ctx, &handler, NULL)) != SHOAL_OK ||
      (status = host->callback_register_api(ctx, &api, NULL)) != SHOAL_OK ||
      (status = host->callback_register_metrics(ctx, &metrics, NULL)) != SHOAL_OK) {
    host->callback_reply_set_error(reply, STR("a registration failed"));
    return status;
  }
  host->callback_log(ctx, SHOAL_LOG_INFO, STR("compat plugin built against ABI 1.4 is up"));
  return SHOAL_OK;
}

static void compat_on_shutdown(void* instance) { (void)instance; }

SHOAL_EXPORT const shoal_plugin_api* shoal_plugin_entry(const shoal_host_api* h) {
  static shoal_plugin_api api;
  if (h == NULL || h->abi_major != 1) return NULL;
  host = h;
  api.struct_size = sizeof api;
  api.abi_major = SHOAL_ABI_VERSION_MAJOR;
  api.abi_minor = SHOAL_ABI_VERSION_MINOR;
  api.name = STR("compat14");
  api.version = STR("1.4.0");
  api.description = STR("frozen ABI 1.4 compatibility plugin");
  api.on_init = compat_on_init;
  api.on_shutdown = compat_on_shutdown;
  return &api;
}
