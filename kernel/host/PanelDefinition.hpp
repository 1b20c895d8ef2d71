#pragma once
// Validation of a plugin's declarative panel definition (see shoal_panel_desc in abi.h).
// <shoal/panel.h> is the description plugin authors get; PanelDefinitionTest keeps its
// lists of types equal to what this accepts.
//
// The panel (web/js/pages/plugin.js) renders what this accepts; every value a plugin gives,
// in the definition or in its data, reaches the page as text, never as markup or script.
// The vocabulary and every rule enforced here are described once, in <shoal/panel.h>.
//
// Every refusal is an Error(InvalidArgument) naming the place, e.g.
// "sections[1].type: 'html' is not one of table, form, action, graph, text, progress".
#include <string_view>

namespace shoal::host {

// Throws Error(InvalidArgument) naming the first offending place.
void validatePanelDefinition(std::string_view definitionJson);

}  // namespace shoal::host
