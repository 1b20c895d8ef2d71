/* A plugin written in plain C against the frozen ABI 1.0 header only (not sdk/). It must
 * load into every later 1.x shoald. It registers one of each contribution and its queue
 * handler exercises the document store, so those callbacks are covered too. */
#include <shoal/abi.h>
#include <string.h>

static const shoal_host_api* host;
static shoal_plugin_ctx* context;

#define STR(literal) ((shoal_str){literal, sizeof(literal) - 1})

static shoal_status compat_on_apply(void* user, shoal_str payload, shoal_reply* reply) {
  (void)user;
  shoal_txn* txn = NULL;
  shoal_buffer error = {NULL, 0};
  int64_t revision = 0;
  shoal_status status = host->callback_txn_begin(context, &txn, &error);
  if (status != SHOAL_OK) goto fail;
  status = host->callback_doc_put(txn, STR("applied"), STR("last"), payload, -1, &revision, &error);
  if (status != SHOAL_OK) {
    host->callback_txn_end(txn);
    goto fail;
  }
  status = host->callback_txn_commit(txn, &error);
  if (status != SHOAL_OK) goto fail;
  host->callback_reply_append(reply, STR("stored"));
  return SHOAL_OK;
fail:
  host->callback_reply_set_error(reply, (shoal_str){error.data, error.len});
  host->callback_buffer_free(&error);
  return status;
}

static shoal_status compat_on_event(void* user, shoal_str event, shoal_str payload,
                                    shoal_reply* reply) {
  (void)user; (void)event; (void)payload; (void)reply;
  return SHOAL_OK;
}

static shoal_status compat_on_init(void* instance, shoal_plugin_ctx* ctx, shoal_reply* reply) {
  (void)instance;
  context = ctx;
  shoal_queue_handler_desc handler;
  memset(&handler, 0, sizeof handler);
  handler.struct_size = sizeof handler;
  handler.kind = STR("compat.store");
  handler.description = STR("stores its payload as document applied/last");
  handler.on_apply = compat_on_apply;

  static const shoal_probe_step steps[] = {{{"PING\r\n", 6}, {"+PONG", 5}}};
  shoal_probe_desc probe;
  memset(&probe, 0, sizeof probe);
  probe.struct_size = sizeof probe;
  probe.service = STR("compat");
  probe.kind = SHOAL_PROBE_TCP;
  probe.port = 6379;
  probe.steps = steps;
  probe.step_count = 1;

  shoal_panel_desc panel;
  memset(&panel, 0, sizeof panel);
  panel.struct_size = sizeof panel;
  panel.id = STR("compat");
  panel.definition_json =
      STR("{\"title\":\"Compat\",\"sections\":[{\"id\":\"about\",\"type\":\"text\","
          "\"title\":\"About\",\"body\":\"Built against ABI 1.0\"}]}");

  shoal_hook_desc hook;
  memset(&hook, 0, sizeof hook);
  hook.struct_size = sizeof hook;
  hook.event = STR("health.changed");
  hook.on_event = compat_on_event;

  shoal_status status;
  if ((status = host->callback_register_queue_handler(ctx, &handler, NULL)) != SHOAL_OK ||
      (status = host->callback_register_probe(ctx, &probe, NULL)) != SHOAL_OK ||
      (status = host->callback_register_panel(ctx, &panel, NULL)) != SHOAL_OK ||
      (status = host->callback_register_hook(ctx, &hook, NULL)) != SHOAL_OK) {
    host->callback_reply_set_error(reply, STR("a registration failed"));
    return status;
  }
  host->callback_log(ctx, SHOAL_LOG_INFO, STR("compat plugin built against ABI 1.0 is up"));
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
  api.name = STR("compat");
  api.version = STR("1.0.0");
  api.description = STR("frozen ABI 1.0 compatibility plugin");
  api.on_init = compat_on_init;
  api.on_shutdown = compat_on_shutdown;
  return &api;
}
