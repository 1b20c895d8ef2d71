// The SDK's program runner (shoal/process.hpp), with real programs: exit statuses, the time
// limit, the output it keeps, the environment it hands over, and the command lines it refuses.
#include <shoal/process.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using shoal::ProgramResult;
using shoal::runProgram;
using shoal::splitCommand;

TEST(RunProgram, ReportsTheExitStatusAndTheOutputOfBothStreams) {
  const ProgramResult ok = runProgram({"sh", "-c", "echo to-stdout; echo to-stderr >&2"}, 10s);
  EXPECT_TRUE(ok.succeeded());
  EXPECT_EQ(ok.exitCode, 0);
  EXPECT_EQ(ok.describe(), "exited with status 0");
  EXPECT_NE(ok.output.find("to-stdout\n"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("to-stderr\n"), std::string::npos) << ok.output;

  const ProgramResult failed = runProgram({"sh", "-c", "exit 3"}, 10s);
  EXPECT_FALSE(failed.succeeded());
  EXPECT_EQ(failed.exitCode, 3);
  EXPECT_FALSE(failed.timedOut);
  EXPECT_EQ(failed.describe(), "exited with status 3");
}

TEST(RunProgram, PassesArgumentsAsTheyAreWithoutAShell) {
  // Were this a shell line, $HOME would expand and ';' would start a second command.
  const ProgramResult r = runProgram({"printf", "%s|", "$HOME", "a; echo injected", "*"}, 10s);
  ASSERT_TRUE(r.succeeded()) << r.output;
  EXPECT_EQ(r.output, "$HOME|a; echo injected|*|");
}

TEST(RunProgram, KillsAProgramThatOutlivesItsLimit) {
  const auto started = std::chrono::steady_clock::now();
  const ProgramResult r = runProgram({"sleep", "30"}, 300ms);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(r.timedOut);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.describe(), "timed out");
  EXPECT_LT(took, 5s);
}

TEST(RunProgram, ReportsTheSignalThatEndedAProgram) {
  const ProgramResult r = runProgram({"sh", "-c", "kill -TERM $$"}, 10s);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.exitCode, -1);
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.describe(), "killed by signal " + std::to_string(SIGTERM));
}

TEST(RunProgram, KeepsOnlyTheTailOfALongOutput) {
  // 100000 bytes of 'a', then a marker: only the last 8 KiB survive, the marker among them.
  const ProgramResult r = runProgram({"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; echo END-MARKER"}, 10s);
  ASSERT_TRUE(r.succeeded());
  EXPECT_EQ(r.output.size(), ProgramResult::kKeptOutputBytes);
  EXPECT_EQ(r.output.substr(r.output.size() - 11), "END-MARKER\n");
  EXPECT_EQ(r.output.front(), 'a');
}

TEST(RunProgram, DoesNotWaitForADaemonThatKeepsThePipeOpen) {
  // The child leaves a grandchild holding stdout (as nginx keeps stderr); the run ends when
  // the child exits.
  const auto started = std::chrono::steady_clock::now();
  const ProgramResult r = runProgram({"sh", "-c", "sleep 5 & echo started"}, 10s);
  EXPECT_TRUE(r.succeeded());
  EXPECT_FALSE(r.timedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_NE(r.output.find("started"), std::string::npos);
}

TEST(RunProgram, TheEnvironmentGivenReplacesTheCallersWhole) {
  ::setenv("SHOAL_PROCESS_TEST_INHERITED", "from-the-caller", 1);
  const ProgramResult inherited = runProgram({"env"}, 10s);
  ASSERT_TRUE(inherited.succeeded());
  EXPECT_NE(inherited.output.find("SHOAL_PROCESS_TEST_INHERITED=from-the-caller\n"), std::string::npos);

  const ProgramResult replaced = runProgram({"env"}, 10s, {"ONLY_THIS=1", "AND_THIS=two words"});
  ASSERT_TRUE(replaced.succeeded());
  EXPECT_EQ(replaced.output, "ONLY_THIS=1\nAND_THIS=two words\n");

  const ProgramResult empty = runProgram({"env"}, 10s, {});
  ASSERT_TRUE(empty.succeeded());
  EXPECT_EQ(empty.output, "");
  ::unsetenv("SHOAL_PROCESS_TEST_INHERITED");
}

TEST(RunProgram, ThrowsWhenTheProgramCannotBeStarted) {
  try {
    runProgram({"shoal-no-such-program-anywhere"}, 10s);
    FAIL() << "a missing program was run";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run shoal-no-such-program-anywhere"), std::string::npos) << e.what();
  }
  EXPECT_THROW(runProgram({}, 10s), std::invalid_argument);
}

TEST(SplitCommand, SplitsOnBlanks) {
  EXPECT_EQ(splitCommand("systemctl  restart\tnginx"), (std::vector<std::string>{"systemctl", "restart", "nginx"}));
  EXPECT_EQ(splitCommand("/usr/sbin/nginx -t -c /etc/nginx/nginx.conf"),
            (std::vector<std::string>{"/usr/sbin/nginx", "-t", "-c", "/etc/nginx/nginx.conf"}));
}

TEST(SplitCommand, RefusesShellSyntaxAndEmptyLines) {
  for (const std::string line : {"nginx -t; reboot", "a | b", "a && b", "echo $HOME", "echo `id`", "a > b",
                                 "a < b", "echo 'quoted'", "echo \"quoted\"", "rm *", "a\\ b", "(a)",
                                 "a\nb", "x?"}) {
    try {
      splitCommand(line);
      ADD_FAILURE() << "accepted: " << line;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("contains shell syntax"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(splitCommand(""), std::invalid_argument);
  EXPECT_THROW(splitCommand("   \t "), std::invalid_argument);
}
