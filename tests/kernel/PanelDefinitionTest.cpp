#include "host/PanelDefinition.hpp"

#include <gtest/gtest.h>

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
