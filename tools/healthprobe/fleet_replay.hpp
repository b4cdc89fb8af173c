// Which sequence numbers each sender instance has already delivered: the
// highest seen and a 64-wide bitmap below it (the anti-replay window of
// IPsec, RFC 4303 3.4.3), so duplicates are refused while a message that
// arrives a little out of order is still taken.
#pragma once

#include "fleet_message.hpp"

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace healthtable::prober {

class ReplayWindow {
public:
  static constexpr std::uint64_t kWidth = 64;
  /// Senders remembered; the one heard from least recently is forgotten
  /// first (its old messages are then stopped by the skew bound alone).
  static constexpr std::size_t kMaxSenders = 1024;

  /// Accepts (and remembers) `seq` from (host, instance), or says why not.
  std::optional<Refusal> accept(const std::string& host, const std::string& instance,
                                std::uint64_t seq);
  std::size_t senders() const noexcept { return senders_.size(); }

private:
  struct Sender {
    std::uint64_t top = 0;  ///< the highest sequence accepted
    std::uint64_t seen = 0; ///< bit i: top - i was accepted
    std::list<std::pair<std::string, std::string>>::iterator lru;
  };
  std::map<std::pair<std::string, std::string>, Sender> senders_;
  std::list<std::pair<std::string, std::string>> lru_; ///< most recent first
};

inline std::optional<Refusal> ReplayWindow::accept(const std::string& host,
                                                   const std::string& instance, std::uint64_t seq) {
  auto key = std::make_pair(host, instance);
  auto it = senders_.find(key);
  if (it == senders_.end()) {
    if (senders_.size() >= kMaxSenders) {
      senders_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(key);
    senders_.emplace(std::move(key), Sender{seq, 1, lru_.begin()});
    return std::nullopt;
  }
  Sender& s = it->second;
  lru_.splice(lru_.begin(), lru_, s.lru);
  if (seq > s.top) {
    const std::uint64_t shift = seq - s.top;
    s.seen = shift >= kWidth ? 1 : (s.seen << shift) | 1;
    s.top = seq;
    return std::nullopt;
  }
  const std::uint64_t back = s.top - seq;
  if (back >= kWidth) return Refusal::old;
  const std::uint64_t bit = std::uint64_t{1} << back;
  if (s.seen & bit) return Refusal::duplicate;
  s.seen |= bit;
  return std::nullopt;
}

} // namespace healthtable::prober
