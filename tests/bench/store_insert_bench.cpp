// The peer of the queue's throughput benchmark: the raw rate of single-row transactional
// inserts into the same database, through the same store code and connection settings, with
// the same number of concurrent writers. Prints "<rows/s>".
//
// usage: store_insert_bench CONNECTION DATA_DIR ROWS THREADS
#include <Poco/Data/Session.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "store/Store.hpp"
#include "store/Transaction.hpp"

using namespace Poco::Data::Keywords;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: store_insert_bench CONNECTION DATA_DIR ROWS THREADS\n";
    return 2;
  }
  const int rows = std::stoi(argv[3]), threads = std::stoi(argv[4]);
  auto store = shoal::store::Store::open({argv[1], argv[2]});
  {
    auto session = store->session();
    session << "DROP TABLE IF EXISTS bench_insert", now;
    session << (store->backend() == shoal::store::Backend::Sqlite
                    ? "CREATE TABLE bench_insert (id INTEGER PRIMARY KEY AUTOINCREMENT, k VARCHAR(64), body TEXT)"
                    : "CREATE TABLE bench_insert (id BIGINT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(64), body TEXT) "
                      "ENGINE=InnoDB"),
        now;
  }
  std::atomic<int> next{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = next++; i < rows; i = next++) {
        shoal::store::Transaction tx(store->session(), store->backend());
        std::string key = "k" + std::to_string(i % 64), body = "{\"seq\":" + std::to_string(i) + "}";
        tx.session() << "INSERT INTO bench_insert (k, body) VALUES (?, ?)", use(key), use(body), now;
        tx.commit();
      }
    });
  }
  for (auto& w : workers) w.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    auto session = store->session();
    session << "DROP TABLE bench_insert", now;
  }
  std::cout << static_cast<long>(rows / seconds) << "\n";
  return 0;
}
