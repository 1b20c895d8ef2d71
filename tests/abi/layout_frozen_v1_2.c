#define LAYOUT_FUNCTION shoal_layout_frozen_v1_2
#define LAYOUT_THROUGH_1_2
#include "layout.inc"
