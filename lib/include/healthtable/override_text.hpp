// What an override means, in the one sentence healthctl prints and the
// prober replies with: both paths of `healthctl set` say the same thing.
#pragma once

#include <healthtable/error.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <string>
#include <string_view>

namespace healthtable {

/// "groq: forced down; unavailable for 2h or until 'healthctl set gw groq
/// auto'" and its up/auto siblings; for auto, whether `table` has the
/// provider available now.
std::string describe_override(std::string_view segment, std::string_view provider,
                              const OverrideRequest& request, const Table& table);

/// The refusal of `set` on a provider `segment` has never seen (a typo must
/// not register a name nothing routes to): unknown_provider, naming --create.
Error override_of_unknown(std::string_view segment, std::string_view provider);

} // namespace healthtable
