#define LAYOUT_FUNCTION shoal_layout_current_through_1_4
#define LAYOUT_THROUGH_1_4
#include "layout.inc"
