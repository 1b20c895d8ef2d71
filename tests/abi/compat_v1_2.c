/* A plugin written in plain C against the frozen ABI 1.2 header only (not sdk/). It must
 * load into every later 1.x shoald and keep working: its queue handler gets on_apply (not
 * 1.3's on_apply_ctx), its API endpoint keeps 1.1's status mapping, and it emits 1.2's
 * statistics samples. */
#include <shoal/abi.h>
#include <string.h>

static const shoal_host_api* host;
static shoal_plugin_ctx* context;

#define STR(literal) ((shoal_str){literal, sizeof(literal) - 1})

static shoal_status compat_on_apply(void* user, shoal_str payload, shoal_reply* reply) {
  (void)user;
  host->callback_reply_append(reply, STR("applied "));
  host->callback_reply_append(reply, payload);
  return SHOAL_OK;
}

/* GET: {"abi": "1.2"}. POST stats: emits one sample (the host answers UNSUPPORTED where it
 * records none). Anything else: CONFLICT with a message, which 1.1 maps to 409. */
static shoal_status compat_on_request(void* user, shoal_str method, shoal_str path, shoal_str query,
                                      shoal_str body, shoal_reply* reply) {
  (void)user; (void)query; (void)body;
  if (method.len == 3 && memcmp(method.data, "GET", 3) == 0) {
    host->callback_reply_append(reply, STR("{\"abi\": \"1.2\"}"));
    return SHOAL_OK;
  }
  if (path.len == 5 && memcmp(path.data, "stats", 5) == 0) {
    shoal_buffer error = {NULL, 0};
    shoal_status status = host->callback_stats_emit(
        context,
        STR("[{\"series\": \"compat\", \"conns\": 1, \"packets_in\": 1, \"packets_out\": 1, "
            "\"bytes_in\": 1, \"bytes_out\": 1}]"),
        &error);
    if (status != SHOAL_OK) host->callback_reply_set_error(reply, (shoal_str){error.data, error.len});
    host->callback_buffer_free(&error);
    return status;
  }
  host->callback_reply_set_error(reply, STR("compat 1.2 refuses this on purpose"));
  return SHOAL_ERR_CONFLICT;
}

static shoal_status compat_on_init(void* instance, shoal_plugin_ctx* ctx, shoal_reply* reply) {
  (void)instance;
  context = ctx;
  if (host->struct_size < offsetof(shoal_host_api, callback_stats_emit) + sizeof host->callback_stats_emit) {
    host->callback_reply_set_error(reply, STR("needs a host of ABI 1.2"));
    return SHOAL_ERR_UNSUPPORTED;
  }
  shoal_queue_handler_desc handler;
  memset(&handler, 0, sizeof handler);
  handler.struct_size = sizeof handler;
  handler.kind = STR("compat12.echo");
  handler.description = STR("answers with its payload");
  handler.on_apply = compat_on_apply;

  shoal_api_desc api;
  memset(&api, 0, sizeof api);
  api.struct_size = sizeof api;
  api.on_request = compat_on_request;

  shoal_status status;
  if ((status = host->callback_register_queue_handler(ctx, &handler, NULL)) != SHOAL_OK ||
      (status = host->callback_register_api(ctx, &api, NULL)) != SHOAL_OK) {
    host->callback_reply_set_error(reply, STR("a registration failed"));
    return status;
  }
  host->callback_log(ctx, SHOAL_LOG_INFO, STR("compat plugin built against ABI 1.2 is up"));
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
  api.name = STR("compat12");
  api.version = STR("1.2.0");
  api.description = STR("frozen ABI 1.2 compatibility plugin");
  api.on_init = compat_on_init;
  api.on_shutdown = compat_on_shutdown;
  return &api;
}
