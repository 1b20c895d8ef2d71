// The ABI only ever grows at the end: every field of the frozen 1.0, 1.2 and 1.4 headers keeps its
// offset and size in the current header, and every constant keeps its value.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>

extern "C" {
struct shoal_layout_field {
  const char* name;
  size_t offset;
  size_t size;
};
const shoal_layout_field* shoal_layout_frozen_v1_0(size_t* count);
const shoal_layout_field* shoal_layout_current(size_t* count);
const shoal_layout_field* shoal_layout_frozen_v1_2(size_t* count);
const shoal_layout_field* shoal_layout_current_through_1_2(size_t* count);
const shoal_layout_field* shoal_layout_frozen_v1_4(size_t* count);
const shoal_layout_field* shoal_layout_current_through_1_4(size_t* count);
}

namespace {
std::map<std::string, std::pair<size_t, size_t>> layout(const shoal_layout_field* (*fn)(size_t*)) {
  size_t count = 0;
  const shoal_layout_field* fields = fn(&count);
  std::map<std::string, std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < count; ++i) out[fields[i].name] = {fields[i].offset, fields[i].size};
  return out;
}
}  // namespace

TEST(AbiLayout, EveryFieldOfAbi1_0KeepsItsOffsetAndSize) {
  auto frozen = layout(&shoal_layout_frozen_v1_0);
  auto current = layout(&shoal_layout_current);
  ASSERT_GT(frozen.size(), 60u);
  for (const auto& [name, place] : frozen) {
    auto it = current.find(name);
    ASSERT_NE(it, current.end()) << name << " disappeared from the ABI";
    EXPECT_EQ(it->second.first, place.first) << name << " moved (offset or value changed)";
    EXPECT_EQ(it->second.second, place.second) << name << " changed size";
  }
}

TEST(AbiLayout, EveryFieldOfAbi1_2KeepsItsOffsetAndSize) {
  auto frozen = layout(&shoal_layout_frozen_v1_2);
  auto current = layout(&shoal_layout_current_through_1_2);
  ASSERT_GT(frozen.size(), 80u);
  for (const auto& [name, place] : frozen) {
    auto it = current.find(name);
    ASSERT_NE(it, current.end()) << name << " disappeared from the ABI";
    EXPECT_EQ(it->second.first, place.first) << name << " moved (offset or value changed)";
    EXPECT_EQ(it->second.second, place.second) << name << " changed size";
  }
}

TEST(AbiLayout, EveryFieldOfAbi1_4KeepsItsOffsetAndSize) {
  auto frozen = layout(&shoal_layout_frozen_v1_4);
  auto current = layout(&shoal_layout_current_through_1_4);
  ASSERT_GT(frozen.size(), 100u);
  for (const auto& [name, place] : frozen) {
    auto it = current.find(name);
    ASSERT_NE(it, current.end()) << name << " disappeared from the ABI";
    EXPECT_EQ(it->second.first, place.first) << name << " moved (offset or value changed)";
    EXPECT_EQ(it->second.second, place.second) << name << " changed size";
  }
}
