/*
 * shoal panel vocabulary — what a plugin may put in shoal_panel_desc.definition_json
 * (<shoal/abi.h>), what the host refuses, and what the panel then asks the plugin for.
 *
 * The panel is declarative: the plugin describes sections, the panel's own code draws them
 * and shows every value the plugin gives as text. A plugin never sends markup or script;
 * an HTML string in a title, a cell or a message is shown as those characters.
 *
 * ---- the definition (checked once, at registration) ----------------------------------
 *
 * "text" below means a non-empty JSON string; "id" a string matching [a-z0-9_-]{1,64}.
 * Unknown keys are ignored at the top level, in sections, columns and fields (so 1.0-1.2
 * definitions keep loading, and a later ABI minor may give them a meaning: do not rely on
 * them); they are refused inside the objects marked (strict).
 *
 * {"title": text, "sections": [section, ...]}          sections: at least one
 *
 * Every section: "id": id, unique in the panel; "title": text; "type": one of
 *   table, form, action, graph, text, progress.
 *
 * "table": rows from the data callback, {"rows": [object, ...], "note": text?}.
 *   "columns": [column, ...]                  required, at least one
 *       column: {"key": text, "label": text, "live": bool?}
 *       "live": true — the cell is refreshed every refresh_seconds in place; a form of the
 *       panel is never re-rendered by it. Arrays of values are shown joined by ", ".
 *   "row_key": text                           the row field naming a row; required with
 *                                             "live" columns, "row_actions" or "nested"
 *   "refresh_seconds": integer 1..3600        required when a column (here or nested) is
 *                                             live; refused without one
 *   "empty": text                             shown when there are no rows (optional)
 *   "row_actions": [row action, ...]          optional, at least one when present; a button
 *                                             on each row, in an "Actions" column
 *   "nested": (strict) each row expands into a table of its own rows, found in the row's
 *       field "key" (an array of objects):
 *       {"key": text, "row_key": text, "columns": [column, ...], "row_actions": [...]?,
 *        "empty": text?, "open": bool? (rows start expanded; default false)}
 *       One level only: a nested table has no "nested" of its own.
 *
 *   row action (strict): {"label": text, "action": id | "form": id, "confirm": text?}
 *       exactly one of "action" and "form".
 *       "action": POSTs {"row": ROW_KEY} to the action ("parent": PARENT_ROW_KEY too on a
 *       nested row), after asking "confirm" when given.
 *       "form": opens that form section of this panel (it must exist and be a form) for the
 *       row: fields whose name is a field of the row start with its value, and the form
 *       submits "row" (and "parent") beside its fields. "confirm" is refused with "form".
 *
 * "form": submits its fields as a JSON object to its action.
 *   "action": id                              required
 *   "fields": [field, ...]                    required, at least one; names unique
 *   "submit": text                            the button's label (default: the title)
 *   "hidden": bool                            shown only when a row action opens it; refused
 *                                             unless some row action names the form
 *   field: {"name": text, "label": text, "type": one of text, number, password, checkbox,
 *           select, list; "required": bool?, "help": text?, "readonly": bool?,
 *           "default": string | number | bool?, "options": [...]?, "min": number?,
 *           "max": number?, "show_when": {...}?}
 *       "name": "row" and "parent" are reserved (what a row action adds).
 *       "options": select only, and required for it: at least one; each a text or (strict)
 *           {"value": text, "label": text}; values unique.
 *       "default": a select's default must be one of its option values.
 *       "min"/"max": number only; min <= max.
 *       "list": a list of texts, entered separated by blanks or commas, sent as an array.
 *       "checkbox": sent as true/false; "number": as a number (left out when empty).
 *       "readonly": shown (e.g. filled from a row) but not editable and not sent.
 *       "show_when" (strict): {"field": NAME, "equals": text | [text, ...]} — the field is
 *           shown, required and sent only while the field NAME (declared earlier in the
 *           same form, not itself) has one of those values (a checkbox's are "true" and
 *           "false").
 *
 * "action": a button. "action": id (required), "label": text (required), "confirm": text?
 * "graph": "metric": text (required); the data callback may answer {"graphs": [{"series",
 *   "title"?, "range"?, "metric"?}]}.
 * "text": "body": text (required), shown as text.
 * "progress": a list of nodes, each with a state and a progress, from the data callback:
 *   {"nodes": [{"node": text, "state": text, "progress": 0..100?, "detail": text?}],
 *    "summary": text?}. A node without "progress" shows an indeterminate bar.
 *   "refresh_seconds": integer 1..3600 (optional; the list is fetched again that often).
 *
 *
 * What the host refuses, naming the place ("sections[1].type: 'html' is not one of table,
 * form, action, graph, text, progress"): a definition that is not a JSON object; a missing
 * or empty "title"; "sections" missing, not an array, or empty; a section that is not an
 * object; a missing or malformed "id", a duplicate id; a missing "title" or "type"; a type
 * outside SHOAL_PANEL_SECTION_TYPES; a type's required key missing, of the wrong JSON type or
 * empty; a field type outside SHOAL_PANEL_FIELD_TYPES; any rule above broken (a live column
 * without refresh_seconds, a row action naming no form of the panel, a show_when naming a
 * later field, an unknown key in a strict object...). A refused definition fails
 * callback_register_panel with SHOAL_ERR_INVALID_ARGUMENT, and with it the plugin's init.
 * The panel id itself (shoal_panel_desc.id) matches [a-z0-9_-]{1,64}, unique per plugin.
 *
 * ---- what the panel asks at run time ------------------------------------------------
 *
 *   on_data(section_id, query_json)   for table, progress and graph sections (again every
 *                                     refresh_seconds where the section has one); query_json holds the
 *                                     page's query parameters as a JSON object of strings.
 *                                     Must append one JSON object, else the panel shows an
 *                                     error. NULL on_data: tables show "no data".
 *   on_action(action_id, input_json)  for forms, actions and row actions; may append a JSON object (a
 *                                     "message" key is shown) or a line of text (shown as
 *                                     the message). SHOAL_ERR_INVALID_ARGUMENT with a
 *                                     message that quotes a field name ('port') marks that
 *                                     field of the form.
 * Both run on the manager, for a signed-in admin, through GET
 * /v1/panels/{plugin}/{panel}/sections/{section} and POST .../actions/{action}.
 */
#ifndef SHOAL_PANEL_H
#define SHOAL_PANEL_H

/* The section types the host accepts, separated by single spaces. */
#define SHOAL_PANEL_SECTION_TYPES "table form action graph text progress"

/* The field types of a "form" section, separated by single spaces. */
#define SHOAL_PANEL_FIELD_TYPES "text number password checkbox select list"

/* The pattern of section ids, action ids and panel ids. */
#define SHOAL_PANEL_ID_PATTERN "[a-z0-9_-]{1,64}"

#endif /* SHOAL_PANEL_H */
