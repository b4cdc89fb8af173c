// Writes the seed corpus for fuzz_segment from real tables: valid images of
// a few shapes, and the classic damaged ones. Usage: make_corpus DIR
// (fuzz/corpus is its output, committed; rerun after a layout change).
#include <healthtable/layout.hpp>
#include <healthtable/writer.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace healthtable;

namespace {

std::vector<std::uint8_t> image_of(const std::string& seg) {
  const int fd = ::shm_open(("/" + seg).c_str(), O_RDONLY, 0);
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
  if (::pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  ::close(fd);
  ::shm_unlink(("/" + seg).c_str());
  return out;
}

void save(const std::string& dir, const std::string& name, const std::vector<std::uint8_t>& img) {
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
}

std::vector<std::uint8_t> table(std::uint32_t capacity, int providers, bool tripped) {
  const std::string seg = "healthtable-corpus-" + std::to_string(::getpid());
  {
    CreateOptions o;
    o.capacity = capacity;
    o.policy.failure_threshold = 1;
    auto w = Writer::create(seg, o);
    const char* names[] = {"ollama", "groq", "openrouter", "together", "google"};
    for (int i = 0; i < providers; ++i)
      w.add(names[i % 5]);
    if (tripped && providers > 0) w.mark_unhealthy(names[0], "http 503: upstream timed out");
    if (providers > 1) w.set_override(names[1], Override::forced_down);
    if (providers > 2) w.mark_healthy(names[2]);
    w.set_heartbeat_interval(std::chrono::seconds(1));
    w.heartbeat();
  }
  return image_of(seg);
}

template <class T> void put(std::vector<std::uint8_t>& img, std::size_t off, T v) {
  std::memcpy(img.data() + off, &v, sizeof v);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const auto empty1 = table(1, 0, false);
  const auto full1 = table(1, 1, true);
  const auto four = table(4, 3, true);
  const auto eight = table(8, 5, true);
  save(dir, "valid-cap1-empty", empty1);
  save(dir, "valid-cap1-tripped", full1);
  save(dir, "valid-cap4-three", four);
  save(dir, "valid-cap8-five", eight);
  save(dir, "truncated-header", std::vector<std::uint8_t>(four.begin(), four.begin() + 100));
  save(dir, "truncated-slots", std::vector<std::uint8_t>(four.begin(), four.end() - 200));
  save(dir, "empty", {});
  auto img = four;
  put<std::uint64_t>(img, offsetof(Header, magic), 0);
  save(dir, "magic-unpublished", img);
  img = four;
  put<std::uint32_t>(img, offsetof(Header, layout_version), 2);
  save(dir, "layout-v2", img);
  img = four;
  const std::size_t slot0 = static_cast<std::size_t>(slots_offset_for(4));
  put<std::uint64_t>(img, slot0 + offsetof(Slot, seq), 3); // stuck odd
  std::memset(img.data() + slot0 + offsetof(Slot, copy), 0xEE, sizeof(Record));
  save(dir, "seq-odd", img);
  img = four;
  put<std::uint32_t>(img, offsetof(Header, used), 0xFFFFFFFF);
  put<std::uint32_t>(img, slot0 + offsetof(Slot, name_len), 0xFFFFFFFF);
  std::memset(img.data() + slot0 + offsetof(Slot, name), 0xFF, 64);
  save(dir, "hostile-names", img);
  std::printf("wrote 11 seed images to %s\n", dir.c_str());
  return 0;
}
