#include "host/PanelDefinition.hpp"

#include <gtest/gtest.h>
#include <shoal/panel.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/Error.hpp"

using shoal::host::validatePanelDefinition;

namespace {
std::string errorOf(const std::string& json) {
  try {
    validatePanelDefinition(json);
  } catch (const shoal::Error& e) {
    EXPECT_EQ(e.code(), shoal::ErrorCode::InvalidArgument);
    return e.what();
  }
  return "";
}
}  // namespace

TEST(PanelDefinition, AcceptsEverySectionType) {
  EXPECT_NO_THROW(validatePanelDefinition(R"({"title":"T","sections":[
    {"id":"t","type":"table","title":"Table","columns":[{"key":"a","label":"A"}]},
    {"id":"f","type":"form","title":"Form","action":"save","fields":[
      {"name":"n","label":"N","type":"text"},{"name":"s","label":"S","type":"select","options":["x"]}]},
    {"id":"a","type":"action","title":"Act","action":"go","label":"Go"},
    {"id":"g","type":"graph","title":"Graph","metric":"connections"},
    {"id":"x","type":"text","title":"Text","body":"<b>shown as text</b>"}]})"));
}

TEST(PanelDefinition, RefusesWhatIsNotJson) {
  EXPECT_NE(errorOf("{title").find("not valid JSON"), std::string::npos);
}

TEST(PanelDefinition, RefusesUnknownSectionTypeNamingIt) {
  EXPECT_NE(errorOf(R"({"title":"T","sections":[{"id":"a","type":"html","title":"A"}]})")
                .find("sections[0].type: 'html' is not one of"),
            std::string::npos);
}

TEST(PanelDefinition, RefusesMissingAndDuplicateIds) {
  EXPECT_NE(errorOf(R"({"title":"T","sections":[{"type":"text","title":"A","body":"b"}]})").find("'id' is missing"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"title":"T","sections":[{"id":"a","type":"text","title":"A","body":"b"},
                                                  {"id":"a","type":"text","title":"B","body":"b"}]})")
                .find("'a' is used twice"),
            std::string::npos);
}

TEST(PanelDefinition, RefusesTableWithoutColumnsAndBadFieldType) {
  EXPECT_NE(errorOf(R"({"title":"T","sections":[{"id":"a","type":"table","title":"A"}]})")
                .find("'columns' must be an array"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"title":"T","sections":[{"id":"a","type":"form","title":"A","action":"x",
                        "fields":[{"name":"n","label":"N","type":"script"}]}]})")
                .find("fields[0].type: 'script' is not one of"),
            std::string::npos);
}

TEST(PanelDefinition, RefusesEmptySectionsAndNonObjectRoot) {
  EXPECT_NE(errorOf(R"({"title":"T","sections":[]})").find("must not be empty"), std::string::npos);
  EXPECT_NE(errorOf(R"([1,2])").find("must be a JSON object"), std::string::npos);
}

// ---- the vocabulary of nested tables, live columns, row actions, dependent fields and
// per-node progress ----

namespace {
// One panel: a table of services whose rows expand into their servers, live counters, row
// actions that delete and open forms, a form with dependent fields, and a progress list.
// `table`, `form` and `extra` replace the parts a test changes.
std::string panel(const std::string& table, const std::string& form, const std::string& extra = "") {
  return R"({"title":"T","sections":[)" + table + "," + form +
         R"(,{"id":"edit","type":"form","title":"Edit","action":"edit","hidden":true,
              "fields":[{"name":"weight","label":"W","type":"number"}]})" +
         extra + "]}";
}
const std::string kTable = R"({"id":"services","type":"table","title":"S","row_key":"key","refresh_seconds":2,
  "empty":"none yet",
  "columns":[{"key":"key","label":"Key"},{"key":"connections","label":"Conns","live":true}],
  "row_actions":[{"label":"Delete","action":"delete","confirm":"Sure?"},{"label":"Edit","form":"edit"}],
  "nested":{"key":"servers","row_key":"server","open":true,"empty":"no server",
    "columns":[{"key":"server","label":"Server"},{"key":"health","label":"Health","live":true}],
    "row_actions":[{"label":"Remove","action":"remove"}]}})";
const std::string kForm = R"({"id":"add","type":"form","title":"Add","action":"add","submit":"Add it","fields":[
  {"name":"kind","label":"Kind","type":"select","default":"tcp",
   "options":["tcp",{"value":"fwm","label":"Firewall mark"},{"value":"","label":"none"}]},
  {"name":"port","label":"Port","type":"number","min":1,"max":65535,"default":80,"required":true,
   "show_when":{"field":"kind","equals":["tcp","udp"]}},
  {"name":"listeners","label":"Listeners","type":"list","help":"A:P ...","show_when":{"field":"kind","equals":"fwm"}},
  {"name":"kept","label":"Kept","type":"text","readonly":true},
  {"name":"on","label":"On","type":"checkbox","default":false}]})";

void expectRefusal(const std::string& json, const std::string& message) {
  const auto error = errorOf(json);
  EXPECT_NE(error.find(message), std::string::npos) << "expected '" << message << "' in: " << error;
}
std::string with(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}
}  // namespace

TEST(PanelDefinition, AcceptsNestedLiveTablesRowActionsDependentFieldsAndProgress) {
  EXPECT_EQ(errorOf(panel(kTable, kForm,
                          R"(,{"id":"drain","type":"progress","title":"Drain","refresh_seconds":1},
                             {"id":"plain","type":"progress","title":"Plain"})")),
            "");
}

TEST(PanelDefinition, LiveColumnsNeedRefreshAndRowKeyAndRefreshNeedsALiveColumn) {
  expectRefusal(panel(with(kTable, R"("refresh_seconds":2,)", ""), kForm), "sections[0]: 'refresh_seconds' is missing");
  expectRefusal(panel(with(kTable, R"("row_key":"key",)", ""), kForm), "sections[0]: 'row_key' is missing");
  expectRefusal(panel(with(kTable, R"("refresh_seconds":2,)", R"("refresh_seconds":0,)"), kForm),
                "sections[0].refresh_seconds: 0 is not from 1 to 3600");
  expectRefusal(panel(with(kTable, R"("refresh_seconds":2,)", R"("refresh_seconds":"2",)"), kForm),
                "sections[0].refresh_seconds: must be a whole number");
  expectRefusal(R"({"title":"T","sections":[{"id":"t","type":"table","title":"T","refresh_seconds":5,
                    "columns":[{"key":"a","label":"A"}]}]})",
                "sections[0].refresh_seconds: refreshes only live columns");
  expectRefusal(panel(with(kTable, R"("live":true}],)", R"("live":"yes"}],)"), kForm),
                "sections[0].columns[1].live: must be true or false");
  expectRefusal(panel(with(kTable, R"({"key":"connections")", R"({"key":"key")"), kForm),
                "sections[0].columns[1].key: 'key' is used twice");
}

TEST(PanelDefinition, NestedTablesAreStrictAndOneLevelDeep) {
  expectRefusal(panel(with(kTable, R"("nested":{"key":"servers",)", R"("nested":{)"), kForm),
                "sections[0].nested: 'key' is missing");
  expectRefusal(panel(with(kTable, R"("row_key":"server",)", ""), kForm), "sections[0].nested: 'row_key' is missing");
  expectRefusal(panel(with(kTable, R"("open":true,)", R"("open":true,"nested":{},)"), kForm),
                "sections[0].nested: unknown key 'nested'");
  expectRefusal(panel(with(kTable, R"("nested":{"key":"servers",)", R"("nested":{"key":"servers","colums":[],)"), kForm),
                "sections[0].nested: unknown key 'colums'");
  expectRefusal(panel(with(kTable, R"("nested":{)", R"("nested":[1],"x":{)"), kForm), "sections[0].nested: must be an object");
  expectRefusal(panel(with(kTable, R"("label":"Health","live":true)", R"("label":"")"), kForm),
                "sections[0].nested.columns[1].label: must not be empty");
}

TEST(PanelDefinition, RowActionsRunAnActionOrOpenAFormOfThePanel) {
  expectRefusal(panel(with(kTable, R"({"label":"Delete","action":"delete",)", R"({"label":"Delete","action":"delete","form":"edit",)"), kForm),
                "sections[0].row_actions[0]: needs exactly one of 'action'");
  expectRefusal(panel(with(kTable, R"({"label":"Delete","action":"delete",)", R"({"label":"Delete",)"), kForm),
                "sections[0].row_actions[0]: needs exactly one of 'action'");
  expectRefusal(panel(with(kTable, R"("action":"delete")", R"("action":"Delete!")"), kForm),
                "sections[0].row_actions[0].action: 'Delete!' must match");
  expectRefusal(panel(with(kTable, R"({"label":"Edit","form":"edit"})", R"({"label":"Edit","form":"edit","confirm":"?"})"), kForm),
                "sections[0].row_actions[1].confirm: belongs to 'action' row actions");
  expectRefusal(panel(with(kTable, R"({"label":"Edit","form":"edit"})", R"({"label":"Edit","form":"nowhere"})"), kForm),
                "sections[0].row_actions[1].form: no section 'nowhere' in this panel");
  expectRefusal(panel(with(kTable, R"({"label":"Edit","form":"edit"})", R"({"label":"Edit","form":"services"})"), kForm),
                "sections[0].row_actions[1].form: section 'services' is a table, not a form");
  expectRefusal(panel(with(kTable, R"({"label":"Remove","action":"remove"})", R"({"label":"Remove","action":"remove","icon":"x"})"), kForm),
                "sections[0].nested.row_actions[0]: unknown key 'icon'");
  expectRefusal(panel(with(kTable, R"("row_actions":[{"label":"Remove","action":"remove"}])", R"("row_actions":[])"), kForm),
                "sections[0].nested.row_actions: must not be empty");
}

TEST(PanelDefinition, AHiddenFormMustBeOpenedByARowAction) {
  expectRefusal(panel(with(kTable, R"(,{"label":"Edit","form":"edit"})", ""), kForm),
                "sections[2].hidden: no row action opens the form 'edit'");
  expectRefusal(panel(kTable, with(kForm, R"("submit":"Add it")", R"("hidden":"no")")), "sections[1].hidden: must be true or false");
}

TEST(PanelDefinition, DependentFieldsNameAnEarlierFieldOfTheSameForm) {
  expectRefusal(panel(kTable, with(kForm, R"("field":"kind","equals":"fwm")", R"("field":"listeners","equals":"fwm")")),
                "sections[1].fields[2].show_when.field: a field cannot depend on itself");
  expectRefusal(panel(kTable, with(kForm, R"("field":"kind","equals":"fwm")", R"("field":"on_later","equals":"fwm")")),
                "sections[1].fields[2].show_when.field: 'on_later' is not a field declared before this one");
  expectRefusal(panel(kTable, with(kForm, R"("field":"kind","equals":"fwm")", R"("field":"kind")")),
                "sections[1].fields[2].show_when: 'equals' is missing");
  expectRefusal(panel(kTable, with(kForm, R"("equals":["tcp","udp"])", R"("equals":[])")),
                "sections[1].fields[1].show_when.equals: must not be empty");
  expectRefusal(panel(kTable, with(kForm, R"("equals":["tcp","udp"])", R"("equals":["tcp",3])")),
                "sections[1].fields[1].show_when.equals[1]: must be a string");
  expectRefusal(panel(kTable, with(kForm, R"("field":"kind","equals":"fwm")", R"("field":"kind","equals":"fwm","not":1)")),
                "sections[1].fields[2].show_when: unknown key 'not'");
}

TEST(PanelDefinition, FieldsAreCheckedForTheirType) {
  expectRefusal(panel(kTable, with(kForm, R"("type":"select","default":"tcp",)", R"("type":"select","default":"sctp",)")),
                "sections[1].fields[0].default: 'sctp' is not one of the options");
  expectRefusal(panel(kTable, with(kForm, R"("options":["tcp",)", R"("options":["tcp","tcp",)")),
                "sections[1].fields[0].options[1]: value 'tcp' is offered twice");
  expectRefusal(panel(kTable, with(kForm, R"({"value":"fwm","label":"Firewall mark"})", R"({"value":"fwm"})")),
                "sections[1].fields[0].options[1]: 'label' is missing");
  expectRefusal(panel(kTable, with(kForm, R"({"value":"fwm","label":"Firewall mark"})", R"({"value":"fwm","label":"F","html":"<b>"})")),
                "sections[1].fields[0].options[1]: unknown key 'html'");
  expectRefusal(panel(kTable, with(kForm, R"("min":1,"max":65535)", R"("min":10,"max":1)")),
                "sections[1].fields[1].min: is greater than max");
  expectRefusal(panel(kTable, with(kForm, R"("help":"A:P ...")", R"("help":"A:P ...","min":1)")),
                "sections[1].fields[2].min: belongs to number fields only");
  expectRefusal(panel(kTable, with(kForm, R"("type":"list",)", R"("type":"list","options":["a"],)")),
                "sections[1].fields[2].options: belongs to select fields only");
  expectRefusal(panel(kTable, with(kForm, R"("name":"kept")", R"("name":"row")")), "sections[1].fields[3].name: 'row' is reserved");
  expectRefusal(panel(kTable, with(kForm, R"("name":"kept")", R"("name":"port")")), "sections[1].fields[3].name: 'port' is used twice");
  expectRefusal(panel(kTable, with(kForm, R"("default":false)", R"("default":[false])")),
                "sections[1].fields[4].default: must be a string, a number or true/false");
  expectRefusal(panel(kTable, with(kForm, R"("readonly":true)", R"("readonly":1)")), "sections[1].fields[3].readonly: must be true or false");
}

TEST(PanelDefinition, ProgressSectionsTakeOnlyARefreshInterval) {
  expectRefusal(panel(kTable, kForm, R"(,{"id":"p","type":"progress","title":"P","refresh_seconds":7200})"),
                "sections[3].refresh_seconds: 7200 is not from 1 to 3600");
  expectRefusal(panel(kTable, kForm, R"(,{"id":"p","type":"progress"})"), "sections[3]: 'title' is missing");
}

// <shoal/panel.h> is the installed description of the vocabulary: its lists of section and
// field types are exactly the ones the validator accepts, in its order.
namespace {
std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}
std::string joined(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& w : list) out += (out.empty() ? "" : ", ") + w;
  return out;
}
}  // namespace

TEST(PanelDefinition, ThePanelHeaderNamesExactlyTheTypesTheValidatorAccepts) {
  const auto sections = words(SHOAL_PANEL_SECTION_TYPES);
  const auto fields = words(SHOAL_PANEL_FIELD_TYPES);
  const std::string sectionError = errorOf(R"({"title":"T","sections":[{"id":"a","type":"nosuch","title":"A"}]})");
  EXPECT_EQ(sectionError.substr(sectionError.find("is not one of ") + 14), joined(sections)) << sectionError;
  const std::string fieldError = errorOf(R"({"title":"T","sections":[{"id":"a","type":"form","title":"A","action":"x",
                                            "fields":[{"name":"n","label":"N","type":"nosuch"}]}]})");
  EXPECT_EQ(fieldError.substr(fieldError.find("is not one of ") + 14), joined(fields)) << fieldError;

  // A minimal section of every type the header names is accepted.
  const std::map<std::string, std::string> minimal{
      {"table", R"("columns":[{"key":"a","label":"A"}])"},
      {"form", R"("action":"save","fields":[{"name":"n","label":"N","type":"text"}])"},
      {"action", R"("action":"go","label":"Go")"},
      {"graph", R"("metric":"hello.series")"},
      {"text", R"("body":"b")"},
      {"progress", R"("refresh_seconds":1)"}};
  for (const auto& type : sections) {
    auto it = minimal.find(type);
    ASSERT_NE(it, minimal.end()) << "panel.h names section type '" << type << "' that this test has no example of";
    EXPECT_EQ(errorOf(R"({"title":"T","sections":[{"id":"a","type":")" + type + R"(","title":"A",)" + it->second + "}]}"), "")
        << type;
  }
  for (const auto& type : fields) {
    const std::string options = type == "select" ? R"(,"options":["x"])" : "";
    EXPECT_EQ(errorOf(R"({"title":"T","sections":[{"id":"a","type":"form","title":"A","action":"x","fields":[
                         {"name":"n","label":"N","type":")" + type + "\"" + options + "}]}]}"),
              "")
        << type;
  }
}
