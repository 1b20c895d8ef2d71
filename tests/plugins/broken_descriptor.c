/* Plugins whose descriptor the host must refuse before calling init. One source, built
 * several times with BROKEN_* defined:
 *   BROKEN_ABI_MAJOR    claims ABI 2.0
 *   BROKEN_TABLE_LARGE  claims a descriptor 64 bytes larger than ABI 1.0 knows
 *   BROKEN_DECLINES     returns no descriptor at all
 *   BROKEN_BAD_NAME     declares a name with characters the host does not accept */
#include <shoal/abi.h>
#include <string.h>

#define STR(literal) ((shoal_str){literal, sizeof(literal) - 1})

static int init_calls;

static shoal_status broken_on_init(void* instance, shoal_plugin_ctx* ctx, shoal_reply* reply) {
  (void)instance; (void)ctx; (void)reply;
  ++init_calls; /* never reached: the host refuses before init */
  return SHOAL_OK;
}

static void broken_on_shutdown(void* instance) { (void)instance; }

/* Room for the larger table the plugin claims to have. */
static struct {
  shoal_plugin_api api;
  char appended_fields[64];
} descriptor;

SHOAL_EXPORT const shoal_plugin_api* shoal_plugin_entry(const shoal_host_api* host) {
  (void)host;
  shoal_plugin_api* api = &descriptor.api;
  api->struct_size = sizeof *api;
  api->abi_major = SHOAL_ABI_VERSION_MAJOR;
  api->abi_minor = SHOAL_ABI_VERSION_MINOR;
  api->name = STR(BROKEN_NAME);
  api->version = STR("0.0.1");
  api->description = STR("deliberately broken");
  api->on_init = broken_on_init;
  api->on_shutdown = broken_on_shutdown;
#if defined(BROKEN_ABI_MAJOR)
  api->abi_major = 2;
#elif defined(BROKEN_TABLE_LARGE)
  api->struct_size = sizeof descriptor;
  api->abi_minor = 7;
#elif defined(BROKEN_DECLINES)
  return NULL;
#endif
  return api;
}
