#include "BackendTest.hpp"

namespace shoal::store::test {
namespace {

class ClusterMeta : public BackendTest {};

TEST_P(ClusterMeta, AKeyHasNoValueUntilOneIsSet) {
  auto store = openMigratedStore();
  EXPECT_EQ(store->meta("cluster_id"), std::nullopt);
  store->setMeta("cluster_id", "4f3c2a");
  EXPECT_EQ(store->meta("cluster_id"), std::optional<std::string>("4f3c2a"));
  EXPECT_EQ(store->meta("Cluster_id"), std::nullopt) << "keys are case-sensitive";
}

TEST_P(ClusterMeta, SetMetaReplacesTheValue) {
  auto store = openMigratedStore();
  store->setMeta("leader", "node-1");
  store->setMeta("leader", "node-2 \xf0\x9f\x90\x9f");
  store->setMeta("empty", "");
  EXPECT_EQ(store->meta("leader"), std::optional<std::string>("node-2 \xf0\x9f\x90\x9f"));
  EXPECT_EQ(store->meta("empty"), std::optional<std::string>(""));
  auto reopened = openStore();
  EXPECT_EQ(reopened->meta("leader"), std::optional<std::string>("node-2 \xf0\x9f\x90\x9f"));
}

TEST_P(ClusterMeta, BadKeysAndValuesAreRefused) {
  auto store = openMigratedStore();
  errorMessageOf(ErrorCode::InvalidArgument, [&] { store->setMeta("", "v"); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { store->setMeta(std::string(65, 'k'), "v"); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { store->meta(""); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { store->setMeta("k", "\xff"); });
  errorMessageOf(ErrorCode::InvalidArgument, [&] { store->setMeta("k", std::string(65536, 'v')); });
  store->setMeta(std::string(64, 'k'), std::string(65535, 'v'));
  EXPECT_EQ(store->meta(std::string(64, 'k'))->size(), 65535u);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(ClusterMeta);

}  // namespace
}  // namespace shoal::store::test
