// Writes the seed corpus for fuzz_segment from real tables: valid images of
// a few shapes, and the classic damaged ones. Usage: make_corpus DIR
// (fuzz/corpus is its output, committed; rerun after a layout change).
#include <healthtable/home.hpp>
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
  char obj[512] = {};
  const std::string link = home_dir(seg) + "/table";
  if (::readlink(link.c_str(), obj, sizeof obj - 1) <= 0) return {};
  const int fd = ::open(obj, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  ::fstat(fd, &st);
  std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
  if (::pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  ::close(fd);
  Writer::destroy(seg, true);
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
    o.events = 16; // small seeds: the ring is 256 B an event
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
  put<std::uint32_t>(img, offsetof(Header, layout_version), 1);
  save(dir, "layout-v1", img);
  img = four;
  const Offsets off = offsets_for(4, 16);
  const std::size_t head0 = static_cast<std::size_t>(off.heads);
  const std::size_t body0 = static_cast<std::size_t>(off.bodies);
  put<std::uint64_t>(img, body0 + offsetof(SlotBody, seq), 3); // stuck odd
  std::memset(img.data() + body0 + offsetof(SlotBody, copy), 0xEE, sizeof(Record));
  save(dir, "seq-odd", img);
  img = four;
  put<std::uint32_t>(img, offsetof(Header, used), 0xFFFFFFFF);
  put<std::uint64_t>(img, head0 + offsetof(SlotHead, ident), ~std::uint64_t{1});
  std::memset(img.data() + head0 + offsetof(SlotHead, name), 0xFF, 64);
  save(dir, "hostile-names", img);
  std::printf("wrote 11 seed images to %s\n", dir.c_str());
  return 0;
}
