#include <healthtable/clock.hpp>

namespace healthtable {

Instant Instant::now() noexcept {
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  return {detail::coarse_mono_ns(), std::int64_t{wall.tv_sec} * 1'000'000'000 + wall.tv_nsec};
}

} // namespace healthtable
