#include <healthtable/clock.hpp>

#include <cstdio>
#include <cstring>

namespace healthtable {

Instant Instant::now() noexcept {
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  return {detail::coarse_mono_ns(), std::int64_t{wall.tv_sec} * 1'000'000'000 + wall.tv_nsec};
}

namespace detail {

namespace {
std::int64_t read_mono_offset() noexcept {
  // "monotonic      100000         0": seconds and nanoseconds. A kernel
  // without time namespaces has no such file: offset 0.
  std::FILE* f = std::fopen("/proc/self/timens_offsets", "re");
  if (!f) return 0;
  std::int64_t offset = 0;
  char name[32];
  long long sec = 0, nsec = 0;
  while (std::fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3)
    if (std::strcmp(name, "monotonic") == 0) offset = sec * 1'000'000'000 + nsec;
  std::fclose(f);
  return offset;
}
} // namespace

std::int64_t mono_offset_ns() noexcept {
  static const std::int64_t offset = [] {
    const std::int64_t o = read_mono_offset();
    g_mono_offset_ns.store(o, std::memory_order_relaxed);
    return o;
  }();
  return offset;
}

} // namespace detail
} // namespace healthtable
