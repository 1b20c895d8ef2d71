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
      {"text", R"("body":"b")"}};
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
