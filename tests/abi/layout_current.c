#define LAYOUT_FUNCTION shoal_layout_current
#include "layout.inc"
