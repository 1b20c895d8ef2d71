#define LAYOUT_FUNCTION shoal_layout_frozen_v1_0
#include "layout.inc"
