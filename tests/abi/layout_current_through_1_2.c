#define LAYOUT_FUNCTION shoal_layout_current_through_1_2
#define LAYOUT_THROUGH_1_2
#include "layout.inc"
