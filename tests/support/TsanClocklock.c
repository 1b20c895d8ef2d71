/* Linked into every target of a ThreadSanitizer build (SHOAL_SANITIZE=thread).
 *
 * libstdc++ 12 locks std::timed_mutex with a deadline through pthread_mutex_clocklock, which
 * GCC 12's TSan runtime does not intercept: it never sees the lock taken, reports the unlock
 * as "unlock of an unlocked mutex" and misses the ordering the mutex gives. This definition
 * takes precedence over glibc's and forwards to pthread_mutex_timedlock, which TSan does
 * intercept, after turning the deadline into one on CLOCK_REALTIME. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <time.h>

int pthread_mutex_clocklock(pthread_mutex_t* mutex, clockid_t clock, const struct timespec* deadline) {
  if (clock == CLOCK_REALTIME) return pthread_mutex_timedlock(mutex, deadline);
  if (clock != CLOCK_MONOTONIC) return EINVAL;
  struct timespec now_on_clock, now_real, real_deadline;
  clock_gettime(CLOCK_MONOTONIC, &now_on_clock);
  clock_gettime(CLOCK_REALTIME, &now_real);
  long long left_ns = (long long)(deadline->tv_sec - now_on_clock.tv_sec) * 1000000000LL +
                      (deadline->tv_nsec - now_on_clock.tv_nsec);
  if (left_ns < 0) left_ns = 0;
  long long real_ns = (long long)now_real.tv_nsec + left_ns % 1000000000LL;
  real_deadline.tv_sec = now_real.tv_sec + (time_t)(left_ns / 1000000000LL) + (time_t)(real_ns / 1000000000LL);
  real_deadline.tv_nsec = (long)(real_ns % 1000000000LL);
  return pthread_mutex_timedlock(mutex, &real_deadline);
}
