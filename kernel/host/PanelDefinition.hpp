#pragma once
// Validation of a plugin's declarative panel definition (see shoal_panel_desc in abi.h).
//
// The panel (web/js/pages/plugin.js) renders what this accepts; every value a plugin gives,
// in the definition or in its data, reaches the page as text, never as markup or script.
// "text" below means a non-empty JSON string; "id" a string matching [a-z0-9_-]{1,64}.
// Unknown keys are ignored at the top level, in sections, columns and fields (so 1.0-1.2
// definitions keep loading); they are refused inside the objects marked (strict).
//
// {"title": text, "sections": [section, ...]}          sections: at least one
//
// Every section: "id": id, unique in the panel; "title": text; "type": one of
//   table, form, action, graph, text, progress.
//
// "table": rows from the data callback, {"rows": [object, ...], "note": text?}.
//   "columns": [column, ...]                  required, at least one
//       column: {"key": text, "label": text, "live": bool?}
//       "live": true — the cell is refreshed every refresh_seconds in place; a form of the
//       panel is never re-rendered by it. Arrays of values are shown joined by ", ".
//   "row_key": text                           the row field naming a row; required with
//                                             "live" columns, "row_actions" or "nested"
//   "refresh_seconds": integer 1..3600        required when a column (here or nested) is
//                                             live; refused without one
//   "empty": text                             shown when there are no rows (optional)
//   "row_actions": [row action, ...]          optional, at least one when present; a button
//                                             on each row, in an "Actions" column
//   "nested": (strict) each row expands into a table of its own rows, found in the row's
//       field "key" (an array of objects):
//       {"key": text, "row_key": text, "columns": [column, ...], "row_actions": [...]?,
//        "empty": text?, "open": bool? (rows start expanded; default false)}
//       One level only: a nested table has no "nested" of its own.
//
//   row action (strict): {"label": text, "action": id | "form": id, "confirm": text?}
//       exactly one of "action" and "form".
//       "action": POSTs {"row": ROW_KEY} to the action ("parent": PARENT_ROW_KEY too on a
//       nested row), after asking "confirm" when given.
//       "form": opens that form section of this panel (it must exist and be a form) for the
//       row: fields whose name is a field of the row start with its value, and the form
//       submits "row" (and "parent") beside its fields. "confirm" is refused with "form".
//
// "form": submits its fields as a JSON object to its action.
//   "action": id                              required
//   "fields": [field, ...]                    required, at least one; names unique
//   "submit": text                            the button's label (default: the title)
//   "hidden": bool                            shown only when a row action opens it; refused
//                                             unless some row action names the form
//   field: {"name": text, "label": text, "type": one of text, number, password, checkbox,
//           select, list; "required": bool?, "help": text?, "readonly": bool?,
//           "default": string | number | bool?, "options": [...]?, "min": number?,
//           "max": number?, "show_when": {...}?}
//       "name": "row" and "parent" are reserved (what a row action adds).
//       "options": select only, and required for it: at least one; each a text or (strict)
//           {"value": text, "label": text}; values unique.
//       "default": a select's default must be one of its option values.
//       "min"/"max": number only; min <= max.
//       "list": a list of texts, entered separated by blanks or commas, sent as an array.
//       "checkbox": sent as true/false; "number": as a number (left out when empty).
//       "readonly": shown (e.g. filled from a row) but not editable and not sent.
//       "show_when" (strict): {"field": NAME, "equals": text | [text, ...]} — the field is
//           shown, required and sent only while the field NAME (declared earlier in the
//           same form, not itself) has one of those values (a checkbox's are "true" and
//           "false").
//
// "action": a button. "action": id (required), "label": text (required), "confirm": text?
// "graph": "metric": text (required); the data callback may answer {"graphs": [{"series",
//   "title"?, "range"?, "metric"?}]}.
// "text": "body": text (required), shown as text.
// "progress": a list of nodes, each with a state and a progress, from the data callback:
//   {"nodes": [{"node": text, "state": text, "progress": 0..100?, "detail": text?}],
//    "summary": text?}. A node without "progress" shows an indeterminate bar.
//   "refresh_seconds": integer 1..3600 (optional; the list is fetched again that often).
//
// Every refusal is an Error(InvalidArgument) naming the place, e.g.
// "sections[1].type: 'html' is not one of table, form, action, graph, text, progress".
#include <string_view>

namespace shoal::host {

// Throws Error(InvalidArgument) naming the first offending place.
void validatePanelDefinition(std::string_view definitionJson);

}  // namespace shoal::host
