// Table::pick(): the first provider of an ordered chain this process may
// route to, and, when there is none, the panic or "none" policy instead of
// routing nowhere. The hot case (the first provider up) is inline in
// table.hpp; this is everything past it, built on the same per-provider
// answer as is_healthy() (Impl::available_from(), ramp included).
#include "breaker.hpp" // saturating_add
#include "table_impl.hpp"

#include <healthtable/table.hpp>

#include <algorithm>

namespace healthtable {

std::string_view pick_reason_name(PickReason r) noexcept {
  switch (r) {
  case PickReason::available: return "available";
  case PickReason::panic: return "panic";
  case PickReason::none: return "none";
  case PickReason::forced_down: return "forced_down";
  case PickReason::empty: return "empty";
  }
  return "empty";
}

namespace {

/// The moment a pick compares against: the caller's, or the clocks read
/// once, and only when a provider's answer depends on the time.
class Now {
public:
  explicit Now(const Instant* given) noexcept : given_(given) {}

  /// Now on the host's CLOCK_MONOTONIC, as the table stores deadlines.
  std::int64_t host() noexcept {
    if (!read_) {
      host_ = detail::to_host_mono(given_ ? std::max<std::int64_t>(given_->mono_ns, 0)
                                          : detail::coarse_mono_ns());
      read_ = true;
    }
    return host_;
  }

  /// Host-monotonic instant `at` on this process's clocks: its
  /// CLOCK_MONOTONIC and, through now's pair, the wall clock.
  Instant instant(std::int64_t at) noexcept {
    const std::int64_t unix_now = given_ ? given_->unix_ns : Instant::now().unix_ns;
    return {detail::saturating_add(at, detail::mono_offset_ns()),
            detail::saturating_add(unix_now, detail::saturating_add(at, -host()))};
  }

private:
  const Instant* given_;
  std::int64_t host_ = 0;
  bool read_ = false;
};

/// The pick over `n` providers, `from(i)` saying from when provider i is
/// available (Impl::available_from()).
template <class From>
Pick choose(std::size_t n, From&& from, PickPolicy policy, const Instant* given) noexcept {
  Pick p;
  if (n == 0) return p;
  Now now(given);
  std::size_t first_back = 0;
  std::int64_t first_back_from = detail::kAvailableNever;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t f = from(i);
    // kAvailableAlways and kAvailableNever need no clock.
    if (f == detail::kAvailableAlways || (f != detail::kAvailableNever && f <= now.host())) {
      p.index = i;
      p.available = true;
      p.reason = PickReason::available;
      return p;
    }
    // Strictly earlier: of providers back at the same moment, the chain's
    // order decides.
    if (f < first_back_from) {
      first_back = i;
      first_back_from = f;
    }
  }
  if (first_back_from == detail::kAvailableNever) {
    p.reason = PickReason::forced_down;
    return p;
  }
  p.retry_at = now.instant(first_back_from);
  if (policy == PickPolicy::panic) {
    p.index = first_back;
    p.panic = true;
    p.reason = PickReason::panic;
  } else {
    p.reason = PickReason::none;
  }
  return p;
}

} // namespace

Pick Table::pick_slow(std::span<const Handle> chain, PickPolicy policy,
                      const Instant* now) const noexcept {
  return choose(
      chain.size(),
      [&](std::size_t i) {
        return impl_->available_from(*static_cast<const detail::Cell*>(chain[i].cell_));
      },
      policy, now);
}

Pick Table::pick(std::span<const std::string_view> chain, PickPolicy policy) const noexcept {
  return choose(
      chain.size(), [&](std::size_t i) { return impl_->available_from(chain[i]); }, policy,
      nullptr);
}

Pick Table::pick(std::span<const std::string_view> chain, Instant now,
                 PickPolicy policy) const noexcept {
  return choose(
      chain.size(), [&](std::size_t i) { return impl_->available_from(chain[i]); }, policy, &now);
}

} // namespace healthtable
