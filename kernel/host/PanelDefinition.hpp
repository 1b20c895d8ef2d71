#pragma once
// Validation of a plugin's declarative panel definition (see shoal_panel_desc in abi.h).
// <shoal/panel.h> is the description plugin authors get; PanelDefinitionTest keeps its
// lists of types equal to what this accepts.
//
// Accepted shape:
//   { "title": text,
//     "sections": [ { "id": [a-z0-9_-]+ (unique), "title": text, "type": one of
//        "table"  + "columns": [ { "key": text, "label": text } ... ]  (at least one)
//        "form"   + "action": id, "fields": [ { "name": text, "label": text,
//                   "type": "text"|"number"|"password"|"checkbox"|"select",
//                   "options": [text...] (select only), "required": bool } ... ]
//        "action" + "action": id, "label": text, "confirm": text (optional)
//        "graph"  + "metric": text
//        "text"   + "body": text (shown as text, never as markup) } ... ] }
#include <string_view>

namespace shoal::host {

// Throws Error(InvalidArgument) naming the first offending place, e.g.
// "sections[1].type: 'html' is not one of table, form, action, graph, text".
void validatePanelDefinition(std::string_view definitionJson);

}  // namespace shoal::host
