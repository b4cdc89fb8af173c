// detail: a Policy as the nine words a record (and the header) stores, and
// back. Reading never trusts the words: a hostile or torn image decodes to
// a policy the breaker can run without overflowing (docs/layout.md).
#pragma once

#include <healthtable/layout.hpp>
#include <healthtable/writer.hpp>

#include <cstdint>

namespace healthtable::detail {

/// kMasks bit 40: a probe's success clears failures workers reported.
inline constexpr std::uint64_t kProbeClearsReports = 1ULL << 40;

void encode_policy(const Policy& p, std::uint64_t* w) noexcept;
Policy decode_policy(const std::uint64_t* w) noexcept;

} // namespace healthtable::detail
