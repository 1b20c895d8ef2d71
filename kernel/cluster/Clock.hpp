#pragma once
#include <chrono>
#include <functional>

namespace shoal::cluster {

using TimePoint = std::chrono::system_clock::time_point;
// Where the cluster classes read the time; tests pass a clock they move by hand. An empty
// function means std::chrono::system_clock::now.
using Clock = std::function<TimePoint()>;

}  // namespace shoal::cluster
