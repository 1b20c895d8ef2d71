#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "BackendTest.hpp"
#include "store/DocumentStore.hpp"

namespace shoal::store::test {
namespace {

class DocumentStoreTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (HasFatalFailure()) return;
    store_ = openMigratedStore();
    docs_ = std::make_unique<DocumentStore>(*store_);
  }
  void TearDown() override {
    docs_.reset();
    store_.reset();
    BackendTest::TearDown();
  }

  // Commits one put in its own transaction.
  std::int64_t putCommitted(const std::string& plugin, const std::string& collection,
                            const std::string& key, const std::string& json) {
    auto tx = docs_->begin(plugin);
    const std::int64_t revision = tx->put(collection, key, json);
    tx->commit();
    return revision;
  }

  std::vector<std::string> listKeys(const std::string& plugin, const std::string& collection,
                                    const std::string& prefix) {
    std::vector<std::string> keys;
    auto tx = docs_->begin(plugin);
    tx->list(collection, prefix, [&](const Document& d) {
      keys.push_back(d.key);
      return true;
    });
    return keys;
  }

  std::unique_ptr<Store> store_;
  std::unique_ptr<DocumentStore> docs_;
};

TEST_P(DocumentStoreTest, PutCreatesADocumentAtRevisionOneAndGetReturnsIt) {
  auto tx = docs_->begin("web");
  EXPECT_FALSE(tx->get("sites", "example.org").has_value());
  EXPECT_EQ(tx->put("sites", "example.org", R"({"root":"/srv/www","php":"8.2"})"), 1);
  auto doc = tx->get("sites", "example.org");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->key, "example.org");
  EXPECT_EQ(doc->json, R"({"root":"/srv/www","php":"8.2"})");
  EXPECT_EQ(doc->revision, 1);
  tx->commit();
}

TEST_P(DocumentStoreTest, EveryPutAddsOneToTheRevision) {
  EXPECT_EQ(putCommitted("web", "sites", "a", "1"), 1);
  EXPECT_EQ(putCommitted("web", "sites", "a", "2"), 2);
  auto tx = docs_->begin("web");
  EXPECT_EQ(tx->put("sites", "a", "3"), 3);
  EXPECT_EQ(tx->put("sites", "a", "4"), 4);
  EXPECT_EQ(tx->get("sites", "a")->revision, 4);
  EXPECT_EQ(tx->get("sites", "a")->json, "4");
}

TEST_P(DocumentStoreTest, ExpectedRevisionZeroCreatesOnlyAMissingDocument) {
  auto tx = docs_->begin("web");
  EXPECT_EQ(tx->put("sites", "a", "{}", 0), 1);
  const std::string message =
      errorMessageOf(ErrorCode::Conflict, [&] { tx->put("sites", "a", "[]", 0); });
  EXPECT_NE(message.find("expected revision 0"), std::string::npos) << message;
  EXPECT_NE(message.find("stored revision 1"), std::string::npos) << message;
  EXPECT_EQ(tx->get("sites", "a")->json, "{}");
}

TEST_P(DocumentStoreTest, ExpectedRevisionMustEqualTheStoredRevision) {
  putCommitted("web", "sites", "a", "1");
  putCommitted("web", "sites", "a", "2");  // revision 2
  auto tx = docs_->begin("web");
  const std::string message =
      errorMessageOf(ErrorCode::Conflict, [&] { tx->put("sites", "a", "3", 1); });
  EXPECT_NE(message.find("expected revision 1"), std::string::npos) << message;
  EXPECT_NE(message.find("stored revision 2"), std::string::npos) << message;
  // A conflict leaves the transaction usable.
  EXPECT_EQ(tx->put("sites", "a", "3", 2), 3);
  tx->commit();
  EXPECT_EQ(docs_->begin("web")->get("sites", "a")->json, "3");
}

TEST_P(DocumentStoreTest, ExpectedRevisionOfAMissingDocumentIsAConflict) {
  auto tx = docs_->begin("web");
  const std::string message =
      errorMessageOf(ErrorCode::Conflict, [&] { tx->put("sites", "nothing", "1", 4); });
  EXPECT_NE(message.find("expected revision 4"), std::string::npos) << message;
  EXPECT_NE(message.find("stored revision 0"), std::string::npos) << message;
  EXPECT_FALSE(tx->get("sites", "nothing").has_value());
}

TEST_P(DocumentStoreTest, AnExpectedRevisionBelowMinusOneIsInvalid) {
  auto tx = docs_->begin("web");
  errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->put("sites", "a", "1", -2); });
}

TEST_P(DocumentStoreTest, InvalidJsonIsRefusedAndNothingIsWritten) {
  putCommitted("web", "sites", "kept", R"({"v":1})");
  auto tx = docs_->begin("web");
  for (const std::string bad : {"", "{", R"({"a":1} trailing)", "{a:1}", "[1,2,]", "nul",
                                "\"unterminated", "{\"a\":\"\xc3\"}", "1 2"}) {
    SCOPED_TRACE(bad);
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->put("sites", "new", bad); });
    EXPECT_EQ(message.rfind("document is not valid JSON: ", 0), 0u) << message;
    errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->put("sites", "kept", bad); });
  }
  tx->commit();
  auto check = docs_->begin("web");
  EXPECT_FALSE(check->get("sites", "new").has_value());
  EXPECT_EQ(check->get("sites", "kept")->json, R"({"v":1})");
  EXPECT_EQ(check->get("sites", "kept")->revision, 1);
}

TEST_P(DocumentStoreTest, AnyJsonValueIsADocument) {
  auto tx = docs_->begin("web");
  for (const std::string value :
       {"42", "-1.5e3", "\"text\"", "true", "null", "[]", "{}", "  [1, {\"a\": [null]}]  "}) {
    SCOPED_TRACE(value);
    tx->put("values", "v", value);
    EXPECT_EQ(tx->get("values", "v")->json, value);
  }
}

TEST_P(DocumentStoreTest, CollectionNamesOutsideTheAllowedSetAreRefused) {
  auto tx = docs_->begin("web");
  for (const std::string& bad :
       {std::string(), std::string(129, 'c'), std::string("a b"), std::string("a/b"),
        std::string("a%"), std::string("sites\n"), std::string("caf\xc3\xa9")}) {
    SCOPED_TRACE(bad);
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->put(bad, "k", "1"); });
    EXPECT_EQ(message.rfind("collection \"", 0), 0u) << message;
    errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->get(bad, "k"); });
    errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->remove(bad, "k"); });
    errorMessageOf(ErrorCode::InvalidArgument,
                   [&] { tx->list(bad, "", [](const Document&) { return true; }); });
  }
  EXPECT_EQ(tx->put(std::string(128, 'c'), "k", "1"), 1);
  EXPECT_EQ(tx->put("A-Z_a.z:0-9", "k", "1"), 1);
}

TEST_P(DocumentStoreTest, KeysMustBeOneTo255BytesWithoutNul) {
  auto tx = docs_->begin("web");
  for (const std::string& bad : {std::string(), std::string(256, 'k'), std::string("a\0b", 3)}) {
    SCOPED_TRACE(bad.size());
    const std::string message =
        errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->put("sites", bad, "1"); });
    EXPECT_EQ(message.rfind("key \"", 0), 0u) << message;
    errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->get("sites", bad); });
    errorMessageOf(ErrorCode::InvalidArgument, [&] { tx->remove("sites", bad); });
  }
  const std::string longest(255, 'k');
  EXPECT_EQ(tx->put("sites", longest, "1"), 1);
  EXPECT_EQ(tx->get("sites", longest)->key, longest);
}

TEST_P(DocumentStoreTest, PluginNamesMustBeOneTo64Bytes) {
  errorMessageOf(ErrorCode::InvalidArgument, [&] { docs_->begin(""); });
  const std::string message =
      errorMessageOf(ErrorCode::InvalidArgument, [&] { docs_->begin(std::string(65, 'p')); });
  EXPECT_EQ(message.rfind("plugin name \"", 0), 0u) << message;
  auto tx = docs_->begin(std::string(64, 'p'));
  EXPECT_EQ(tx->put("c", "k", "1"), 1);
}

TEST_P(DocumentStoreTest, RollbackDiscardsTheChanges) {
  putCommitted("web", "sites", "kept", "1");
  auto tx = docs_->begin("web");
  tx->put("sites", "new", "1");
  tx->put("sites", "kept", "2");
  EXPECT_TRUE(tx->remove("sites", "kept"));
  tx->rollback();
  tx->rollback();  // idempotent
  auto check = docs_->begin("web");
  EXPECT_FALSE(check->get("sites", "new").has_value());
  EXPECT_EQ(check->get("sites", "kept")->json, "1");
  EXPECT_EQ(check->get("sites", "kept")->revision, 1);
}

TEST_P(DocumentStoreTest, DestroyingAnUnfinishedTransactionRollsItBack) {
  {
    auto tx = docs_->begin("web");
    tx->put("sites", "new", "1");
  }
  EXPECT_FALSE(docs_->begin("web")->get("sites", "new").has_value());
}

TEST_P(DocumentStoreTest, CommittedChangesAreVisibleToTheNextTransaction) {
  auto writer = docs_->begin("web");
  writer->put("sites", "a", R"({"v":1})");
  writer->commit();
  writer.reset();
  auto reader = docs_->begin("web");
  auto doc = reader->get("sites", "a");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->json, R"({"v":1})");
}

TEST_P(DocumentStoreTest, AFinishedTransactionRefusesFurtherWork) {
  auto tx = docs_->begin("web");
  tx->put("sites", "a", "1");
  tx->commit();
  errorMessageOf(ErrorCode::Failed, [&] { tx->get("sites", "a"); });
  errorMessageOf(ErrorCode::Failed, [&] { tx->put("sites", "a", "2"); });
  errorMessageOf(ErrorCode::Failed, [&] { tx->remove("sites", "a"); });
  errorMessageOf(ErrorCode::Failed, [&] { tx->commit(); });
  tx->rollback();  // a no-op after commit
  EXPECT_EQ(docs_->begin("web")->get("sites", "a")->json, "1");

  auto rolledBack = docs_->begin("web");
  rolledBack->rollback();
  errorMessageOf(ErrorCode::Failed, [&] { rolledBack->get("sites", "a"); });
  errorMessageOf(ErrorCode::Failed, [&] { rolledBack->commit(); });
}

TEST_P(DocumentStoreTest, EachPluginSeesOnlyItsOwnDocuments) {
  putCommitted("alpha", "sites", "shared-key", R"("alpha's")");
  putCommitted("beta", "sites", "shared-key", R"("beta's")");
  putCommitted("alpha", "sites", "only-alpha", "1");

  auto beta = docs_->begin("beta");
  EXPECT_EQ(beta->get("sites", "shared-key")->json, R"("beta's")");
  EXPECT_EQ(beta->get("sites", "shared-key")->revision, 1);
  EXPECT_FALSE(beta->get("sites", "only-alpha").has_value());
  EXPECT_FALSE(beta->remove("sites", "only-alpha"));
  EXPECT_TRUE(beta->remove("sites", "shared-key"));
  beta->commit();

  EXPECT_EQ(listKeys("beta", "sites", ""), std::vector<std::string>{});
  EXPECT_EQ(listKeys("alpha", "sites", ""), (std::vector<std::string>{"only-alpha", "shared-key"}));
  EXPECT_EQ(docs_->begin("alpha")->get("sites", "shared-key")->json, R"("alpha's")");
  // A plugin whose name is a prefix of another's is still a different namespace.
  EXPECT_EQ(listKeys("alph", "sites", ""), std::vector<std::string>{});
}

TEST_P(DocumentStoreTest, RemoveTellsWhetherTheDocumentExisted) {
  putCommitted("web", "sites", "a", "1");
  putCommitted("web", "sites", "a", "2");
  auto tx = docs_->begin("web");
  EXPECT_TRUE(tx->remove("sites", "a"));
  EXPECT_FALSE(tx->remove("sites", "a"));
  EXPECT_FALSE(tx->get("sites", "a").has_value());
  // A document created again starts over at revision 1.
  EXPECT_EQ(tx->put("sites", "a", "3", 0), 1);
}

TEST_P(DocumentStoreTest, ListReturnsDocumentsInByteOrderOfKey) {
  const std::vector<std::string> keys = {"b", "a", "B", "a ",    "aa",   "caf\xc3\xa9",
                                         "Z", "_", "~", "a\x01", "\xff", "0"};
  auto tx = docs_->begin("web");
  for (const auto& key : keys) tx->put("sites", key, "\"" + std::string("v") + "\"");
  tx->put("other", "a", "1");
  std::vector<std::string> seen;
  std::vector<std::int64_t> revisions;
  tx->list("sites", "", [&](const Document& d) {
    seen.push_back(d.key);
    revisions.push_back(d.revision);
    EXPECT_EQ(d.json, "\"v\"");
    return true;
  });
  std::vector<std::string> expected = keys;
  std::sort(expected.begin(), expected.end());  // std::string compares bytes as unsigned char
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(revisions, std::vector<std::int64_t>(keys.size(), 1));
}

TEST_P(DocumentStoreTest, KeysAreCaseSensitiveAndTrailingBlanksCount) {
  auto tx = docs_->begin("web");
  tx->put("sites", "key", "1");
  tx->put("sites", "KEY", "2");
  tx->put("sites", "key ", "3");
  EXPECT_EQ(tx->get("sites", "key")->json, "1");
  EXPECT_EQ(tx->get("sites", "KEY")->json, "2");
  EXPECT_EQ(tx->get("sites", "key ")->json, "3");
  EXPECT_EQ(tx->get("sites", "key")->revision, 1);
}

TEST_P(DocumentStoreTest, ListPrefixTreatsPercentAndUnderscoreLiterally) {
  auto tx = docs_->begin("web");
  for (const std::string key : {"a%b", "a%", "axb", "a_c", "abc", "a_", "a", "b%", "A%b"})
    tx->put("sites", key, "1");
  tx->commit();
  EXPECT_EQ(listKeys("web", "sites", "a%"), (std::vector<std::string>{"a%", "a%b"}));
  EXPECT_EQ(listKeys("web", "sites", "a_"), (std::vector<std::string>{"a_", "a_c"}));
  EXPECT_EQ(listKeys("web", "sites", "a"),
            (std::vector<std::string>{"a", "a%", "a%b", "a_", "a_c", "abc", "axb"}));
  EXPECT_EQ(listKeys("web", "sites", "%"), std::vector<std::string>{});
  EXPECT_EQ(listKeys("web", "sites", "_"), std::vector<std::string>{});
  EXPECT_EQ(listKeys("web", "sites", "a%b"), std::vector<std::string>{"a%b"});
  EXPECT_EQ(listKeys("web", "sites", "zzz"), std::vector<std::string>{});
}

TEST_P(DocumentStoreTest, ListPrefixEndingInHighBytesFindsItsKeys) {
  auto tx = docs_->begin("web");
  for (const std::string key : {"x\xff", "x\xff\xff", "x\xff\x01", "y", "x\xfe"})
    tx->put("bytes", key, "1");
  tx->commit();
  EXPECT_EQ(listKeys("web", "bytes", "x\xff"),
            (std::vector<std::string>{"x\xff", "x\xff\x01", "x\xff\xff"}));
  EXPECT_EQ(listKeys("web", "bytes", "\xff"), std::vector<std::string>{});
}

TEST_P(DocumentStoreTest, ListStopsWhenTheVisitorSaysSo) {
  auto tx = docs_->begin("web");
  for (int i = 0; i < 10; ++i) tx->put("sites", "k" + std::to_string(i), "1");
  std::vector<std::string> seen;
  tx->list("sites", "k", [&](const Document& d) {
    seen.push_back(d.key);
    return seen.size() < 3;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"k0", "k1", "k2"}));
}

TEST_P(DocumentStoreTest, ListWalksACollectionLargerThanOnePage) {
  auto tx = docs_->begin("web");
  std::vector<std::string> expected;
  for (int i = 0; i < 150; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "site-%03d", i);
    expected.push_back(key);
    tx->put("sites", key, std::to_string(i));
  }
  tx->commit();
  auto reader = docs_->begin("web");
  std::vector<std::string> seen;
  reader->list("sites", "site-", [&](const Document& d) {
    seen.push_back(d.key);
    EXPECT_EQ(d.json, std::to_string(seen.size() - 1));
    // The visitor may use the transaction while the list runs.
    EXPECT_TRUE(reader->get("sites", d.key).has_value());
    return true;
  });
  EXPECT_EQ(seen, expected);
}

TEST_P(DocumentStoreTest, UnicodeBodiesRoundTripByteForByte) {
  const std::string body =
      "{\"emoji\":\"\xf0\x9f\x90\x9f\xf0\x9f\x8c\x8a\",\"cjk\":\"\xe6\xb5\xb7\xe6\xb4\x8b\","
      "\"accents\":\"e\xcc\x81t\xc3\xa9\",\"escaped\":\"\\u00e9\\u0000\\ud83d\\ude00\","
      "\"rtl\":\"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\"}";
  auto tx = docs_->begin("web");
  tx->put("i18n", "caf\xc3\xa9-\xf0\x9f\x90\x9f", body);
  tx->commit();
  auto reader = docs_->begin("web");
  auto doc = reader->get("i18n", "caf\xc3\xa9-\xf0\x9f\x90\x9f");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->json, body);
  std::string listed;
  reader->list("i18n", "caf\xc3\xa9", [&](const Document& d) {
    listed = d.json;
    return true;
  });
  EXPECT_EQ(listed, body);
}

TEST_P(DocumentStoreTest, DocumentsUpTo16MiBRoundTripAndLargerOnesAreRefused) {
  const std::size_t limit = DocumentTransaction::kMaxDocumentBytes;
  // A JSON string of exactly the limit, with multi-byte characters across piece boundaries.
  std::string largest = "\"";
  while (largest.size() < limit - 1) largest += (largest.size() % 7 == 0) ? "\xc3\xa9" : "x";
  largest.resize(limit - 1);
  if (static_cast<unsigned char>(largest.back()) == 0xc3) largest.back() = 'y';
  largest += "\"";
  ASSERT_EQ(largest.size(), limit);
  const std::string medium = "[\"" + std::string(200 * 1024, 'm') + "\"]";

  auto tx = docs_->begin("web");
  EXPECT_EQ(tx->put("big", "largest", largest), 1);
  EXPECT_EQ(tx->put("big", "medium", medium), 1);
  const std::string message = errorMessageOf(ErrorCode::InvalidArgument,
                                             [&] { tx->put("big", "too-large", largest + " "); });
  EXPECT_NE(message.find("16777216"), std::string::npos) << message;
  tx->commit();

  auto reader = docs_->begin("web");
  EXPECT_EQ(reader->get("big", "largest")->json, largest);
  EXPECT_EQ(reader->get("big", "medium")->json, medium);
  EXPECT_FALSE(reader->get("big", "too-large").has_value());
  std::vector<std::size_t> sizes;
  reader->list("big", "", [&](const Document& d) {
    sizes.push_back(d.json.size());
    EXPECT_EQ(d.json, d.key == "largest" ? largest : medium);
    return true;
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{largest.size(), medium.size()}));
}

TEST_P(DocumentStoreTest, ConcurrentWritersWithExpectedRevisionsNeverLoseAnUpdate) {
  // Each writer reads the counter in one transaction and writes counter+1 in another,
  // expecting the revision it read: the optimistic pattern across transactions.
  putCommitted("web", "counters", "hits", "0");
  constexpr int kThreads = 6;
  constexpr int kIncrementsEach = 12;
  std::mutex mutex;
  std::vector<std::int64_t> winningRevisions;
  std::atomic<int> conflicts{0};
  std::vector<std::string> errors;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      try {
        DocumentStore docs(*store_);
        for (int done = 0; done < kIncrementsEach;) {
          std::int64_t revision;
          long value;
          {
            auto reader = docs.begin("web");
            auto doc = reader->get("counters", "hits");
            revision = doc->revision;
            value = std::stol(doc->json);
            reader->commit();
          }
          // Widens the window in which another writer can get in between.
          std::this_thread::sleep_for(std::chrono::microseconds(300));
          auto writer = docs.begin("web");
          try {
            const std::int64_t next =
                writer->put("counters", "hits", std::to_string(value + 1), revision);
            writer->commit();
            std::lock_guard lock(mutex);
            winningRevisions.push_back(next);
            ++done;
          } catch (const Error& e) {
            if (e.code() != ErrorCode::Conflict) throw;
            ++conflicts;
          }
        }
      } catch (const std::exception& e) {
        std::lock_guard lock(mutex);
        errors.push_back(e.what());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(errors, std::vector<std::string>{});

  constexpr int kTotal = kThreads * kIncrementsEach;
  std::sort(winningRevisions.begin(), winningRevisions.end());
  std::vector<std::int64_t> expected;
  for (int i = 0; i < kTotal; ++i) expected.push_back(i + 2);  // revision 1 held "0"
  EXPECT_EQ(winningRevisions, expected) << "one winner per revision";
  auto doc = docs_->begin("web")->get("counters", "hits");
  EXPECT_EQ(doc->json, std::to_string(kTotal)) << "no lost update";
  EXPECT_EQ(doc->revision, kTotal + 1);
  RecordProperty("conflicts", conflicts.load());
}

TEST_P(DocumentStoreTest, ConcurrentCreatorsOfOneKeyHaveExactlyOneWinner) {
  constexpr int kThreads = 6;
  std::atomic<int> winners{0}, conflicts{0};
  std::mutex mutex;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        DocumentStore docs(*store_);
        auto tx = docs.begin("web");
        tx->put("locks", "leader", std::to_string(t), 0);
        tx->commit();
        ++winners;
      } catch (const Error& e) {
        if (e.code() == ErrorCode::Conflict) {
          ++conflicts;
        } else {
          std::lock_guard lock(mutex);
          errors.push_back(e.what());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors, std::vector<std::string>{});
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(docs_->begin("web")->get("locks", "leader")->revision, 1);
}

SHOAL_INSTANTIATE_FOR_BOTH_BACKENDS(DocumentStoreTest);

}  // namespace
}  // namespace shoal::store::test
