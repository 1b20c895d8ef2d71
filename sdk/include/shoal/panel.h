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
 *   { "title": TEXT,
 *     "sections": [ SECTION, ... ] }                  at least one section
 *
 * TEXT is a non-empty JSON string. ID is a string matching [a-z0-9_-]{1,64}.
 * Every SECTION is an object with
 *   "id":    ID, unique among the panel's sections
 *   "title": TEXT
 *   "type":  one of SHOAL_PANEL_SECTION_TYPES, plus what that type requires:
 *
 *   "table"   "columns": [ {"key": TEXT, "label": TEXT}, ... ]   at least one column
 *             Rows come from on_data(section id): {"rows": [ {KEY: value, ...}, ... ]};
 *             each cell shows row[column.key] as text; a missing key shows empty.
 *
 *   "form"    "action": ID                the action id on_action receives on submit
 *             "fields": [ FIELD, ... ]    at least one
 *             FIELD: {"name": TEXT, "label": TEXT, "type": one of SHOAL_PANEL_FIELD_TYPES,
 *                     "options": [TEXT, ...]   required (non-empty) for "select" only,
 *                     "required": true|false}  optional; the panel will not submit it empty
 *             Submitting calls on_action(action, input) with a JSON object of the fields:
 *             "checkbox" as true/false, "number" as a number (left out when empty), the
 *             others as strings. The panel's section button is titled with the section
 *             title.
 *
 *   "action"  "action": ID, "label": TEXT     a button; on click on_action(action, {})
 *             "confirm": TEXT                 optional: asked before running it
 *
 *   "graph"   "metric": TEXT                  a statistics series ("<plugin>.<series>", see
 *             callback_stats_emit); drawn from the manager's RRD files. When on_data
 *             answers for the section, its {"graphs": [ {"series": ..., "title": ...,
 *             "range": "hour|day|week|month|year", "metric": "conns|packets|bytes"}, ... ]}
 *             lists the graphs instead (one per series).
 *
 *   "text"    "body": TEXT                    a paragraph, shown as text
 *
 * Other keys in the definition, its sections and fields are ignored today (not refused),
 * and may be given a meaning by a later ABI minor: do not rely on them.
 *
 * What the host refuses, naming the place ("sections[1].type: 'html' is not one of table,
 * form, action, graph, text"): a definition that is not a JSON object; a missing or empty
 * "title"; "sections" missing, not an array, or empty; a section that is not an object; a
 * missing or malformed "id", a duplicate id; a missing "title" or "type"; a type outside
 * SHOAL_PANEL_SECTION_TYPES; a type's required key missing, of the wrong JSON type or empty
 * (columns without key/label, fields without name/label/type, a field type outside
 * SHOAL_PANEL_FIELD_TYPES, a select without options). A refused definition fails
 * callback_register_panel with SHOAL_ERR_INVALID_ARGUMENT, and with it the plugin's init.
 * The panel id itself (shoal_panel_desc.id) matches [a-z0-9_-]{1,64}, unique per plugin.
 *
 * ---- what the panel asks at run time ------------------------------------------------
 *
 *   on_data(section_id, query_json)   for table and graph sections; query_json holds the
 *                                     page's query parameters as a JSON object of strings.
 *                                     Must append one JSON object, else the panel shows an
 *                                     error. NULL on_data: tables show "no data".
 *   on_action(action_id, input_json)  for forms and actions; may append a JSON object (a
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
#define SHOAL_PANEL_SECTION_TYPES "table form action graph text"

/* The field types of a "form" section, separated by single spaces. */
#define SHOAL_PANEL_FIELD_TYPES "text number password checkbox select"

/* The pattern of section ids, action ids and panel ids. */
#define SHOAL_PANEL_ID_PATTERN "[a-z0-9_-]{1,64}"

#endif /* SHOAL_PANEL_H */
