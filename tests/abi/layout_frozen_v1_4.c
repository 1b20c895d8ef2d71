#define LAYOUT_FUNCTION shoal_layout_frozen_v1_4
#define LAYOUT_THROUGH_1_4
#include "layout.inc"
