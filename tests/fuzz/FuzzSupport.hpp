#pragma once
// What every fuzz target shares. A target fails (and libFuzzer reports the input) on a crash,
// a sanitizer report, an exception other than the one its parser promises, or a broken
// property checked with FUZZ_CHECK.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/Error.hpp"

// Aborts with `what` when `condition` is false: a property of the code under test is broken.
#define FUZZ_CHECK(condition, what)                                                        \
  do {                                                                                     \
    if (!(condition)) {                                                                    \
      std::fprintf(stderr, "fuzz property broken at %s:%d: %s\n", __FILE__, __LINE__, what); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (false)

namespace shoal::fuzz {

// A refusal of bad input must say what is wrong: Error(InvalidArgument) with a message.
inline void expectRefusal(const Error& e) {
  FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "bad input refused with a code other than InvalidArgument");
  FUZZ_CHECK(std::string(e.what()).size() > 0, "bad input refused without a message");
}

}  // namespace shoal::fuzz
