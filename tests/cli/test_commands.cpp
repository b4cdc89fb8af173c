// healthctl end to end: each command run as a process, its exit code and
// output checked, and its effect checked again through the library.
#include "run.hpp"

#include <support/support.hpp>

#include <healthtable/layout.hpp>
#include <healthtable/table.hpp>
#include <healthtable/writer.hpp>

#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>

using namespace healthtable;
using namespace healthtable::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

json dump_json(const std::string& segment, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"dump", segment, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const Run r = healthctl(args);
  REQUIRE(r.status == 0);
  REQUIRE(r.err.empty());
  return json::parse(r.out);
}

const json& provider(const json& doc, const std::string& name) {
  for (const json& p : doc.at("providers"))
    if (p.at("name") == name) return p;
  FAIL("provider " << name << " not in dump");
  throw std::logic_error("unreachable");
}

std::string format_hex_for_test(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#018llx", static_cast<unsigned long long>(v));
  return buf;
}

} // namespace

TEST_CASE("--help and --version exit 0 and print to stdout, for every subcommand") {
  const Run top = healthctl({"--help"});
  CHECK(check_ok(top).find("Usage: healthctl") != std::string::npos);
  for (const char* sub : {"create", "info", "dump", "check", "route", "record", "set", "reset",
                          "forget", "grow", "destroy"}) {
    CAPTURE(sub);
    CHECK(contains(top.out, std::string("  ") + sub + " "));
    const Run help = healthctl({sub, "--help"});
    CHECK(contains(check_ok(help), std::string("Usage: healthctl ") + sub));
  }
  const Run version = healthctl({"--version"});
  CHECK(contains(check_ok(version), "healthctl 0.1.0 (segment layout v2"));
  CHECK(count_lines(version.out) == 1);
  // --version after a subcommand falls through to the top level.
  CHECK(check_ok(healthctl({"info", "x", "--version"})) == version.out);
}

TEST_CASE("create prints what it made and info reports the header, as text and JSON") {
  SegmentName seg("cli-create");
  const Run created = healthctl({"create", seg, "--slots", "16", "--failure-threshold", "3",
                                 "--backoff", "500ms", "--mode", "0640"});
  const std::vector<std::string> made = lines_of(check_ok(created));
  REQUIRE(made.size() == 2);
  CHECK(made[0].starts_with("created health table '" + seg.str() + "': 16 slots, "));
  CHECK(contains(made[0], ", failure threshold 3, backoff 500ms, mode 0640, owner uid "));
  CHECK(made[1] == "home " + seg.home() + ", object " + seg.path());
  struct stat st {};
  REQUIRE(::stat(seg.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);

  const std::string text = check_ok(healthctl({"info", seg}));
  CHECK(contains(text, "segment     " + seg.str() + ", live\n"));
  CHECK(contains(text, "home        " + seg.home() + "\n"));
  CHECK(contains(text, "object      " + seg.path() + "\n"));
  CHECK(contains(text, "events      "));
  CHECK(contains(text, "reports     0 dropped before they arrived, 0 refused\n"));
  CHECK(contains(text, "access      owner uid " + std::to_string(::geteuid())));
  CHECK(contains(text, ", mode 0640\n"));
  CHECK(contains(text, "layout      v2, format " + format_hex_for_test(kFormat) + "\n"));
  CHECK(contains(text, "slots       0 of 16 used\n"));
  CHECK(contains(text, "policy      failure threshold 3, backoff 500ms\n"));
  // The creating healthctl was the writer; it has exited, so none is attached.
  CHECK(contains(text, "writer      none attached; the last was pid "));
  CHECK(contains(text, "heartbeat   "));
  CHECK(contains(text, "no interval promised"));

  const Run r = healthctl({"info", seg, "--json"});
  const json j = json::parse(check_ok(r));
  CHECK(j.at("segment") == seg.str());
  CHECK(j.at("home") == seg.home());
  CHECK(j.at("object") == seg.path());
  CHECK(j.at("state") == "live");
  CHECK(j.at("owner_uid") == ::geteuid());
  CHECK(j.at("mode") == "0640");
  CHECK(j.at("layout_version") == 2);
  CHECK(j.at("format") == format_hex_for_test(kFormat));
  CHECK(j.at("capacity") == 16);
  CHECK(j.at("used") == 0);
  CHECK(j.at("total_size").get<std::uint64_t>() == static_cast<std::uint64_t>(st.st_size));
  CHECK(j.at("events").get<std::uint64_t>() >= 0u);
  CHECK(j.at("reports_dropped") == 0);
  CHECK(j.at("reports_refused") == 0);
  CHECK(j.at("failure_threshold") == 3);
  CHECK(j.at("backoff").get<double>() == doctest::Approx(0.5));
  const double now = static_cast<double>(Instant::now().unix_ns) / 1e9;
  CHECK(std::abs(j.at("created").get<double>() - now) < 60);
  CHECK(j.at("writer").at("attached") == false);
  CHECK(j.at("writer").at("pid").get<std::int64_t>() > 0);
  CHECK(j.at("writer").at("stale") == false);
  // The generation is the header's: the library agrees.
  CHECK(j.at("generation").get<std::uint64_t>() == Table::open(seg.str()).info().generation);
}

TEST_CASE("create --mode is exact whatever the umask") {
  SegmentName seg("cli-umask");
  const mode_t old = ::umask(077);
  const Run r = healthctl({"create", seg, "--mode", "644"});
  ::umask(old);
  check_ok(r);
  struct stat st {};
  REQUIRE(::stat(seg.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("record walks the circuit breaker, and check and dump --json follow it") {
  SegmentName seg("cli-breaker");
  check_ok(healthctl({"create", seg, "--backoff", "60s"}));

  CHECK(check_ok(healthctl({"record", seg, "groq", "failure", "--reason", "http 503"})) ==
        "groq: failure 1 of 2 recorded; still healthy\n");
  CHECK(healthctl({"check", seg, "groq"}).status == 0);
  CHECK(check_ok(healthctl({"record", seg, "groq", "failure", "--reason", "http 503"})) ==
        "groq: tripped (2 consecutive failures); unhealthy for 1m\n");

  const Run down = healthctl({"check", seg, "groq"});
  CHECK(down.status == 1);
  CHECK(down.err.empty());
  CHECK(contains(down.out, "groq: unhealthy (tripped, 2 consecutive failures, "));
  CHECK(contains(down.out, "left; last error: http 503)"));

  json doc = dump_json(seg);
  CHECK(doc.at("segment") == seg.str());
  CHECK(doc.at("providers").size() == 1);
  const json& g = provider(doc, "groq");
  CHECK(g.at("healthy") == false);
  CHECK(g.at("available") == false);
  CHECK(g.at("registered") == true);
  CHECK(g.at("consecutive_failures") == 2);
  CHECK(g.at("last_error") == "http 503");
  CHECK(g.at("failures") == 2);
  CHECK(g.at("successes") == 0);
  CHECK(g.at("transitions") == 1);
  CHECK(g.at("override") == "auto");
  const double last_check = g.at("last_check").get<double>();
  CHECK(std::abs(last_check - static_cast<double>(Instant::now().unix_ns) / 1e9) < 60);
  CHECK(g.at("unhealthy_until").get<double>() - last_check == doctest::Approx(60.0));

  CHECK(check_ok(healthctl({"record", seg, "groq", "failure"})) ==
        "groq: still unhealthy (3 consecutive failures); window re-armed, unhealthy for 1m\n");
  CHECK(provider(dump_json(seg), "groq").at("last_error") == "recorded with healthctl");

  CHECK(check_ok(healthctl({"record", seg, "groq", "success"})) ==
        "groq: recovered; healthy again\n");
  CHECK(check_ok(healthctl({"check", seg, "groq"})) == "groq: healthy\n");
  doc = dump_json(seg);
  const json& r = provider(doc, "groq");
  CHECK(r.at("healthy") == true);
  CHECK(r.at("available") == true);
  CHECK(r.at("consecutive_failures") == 0);
  CHECK(r.at("last_error").is_null());
  CHECK(r.at("unhealthy_until") == 0);
  CHECK(r.at("transitions") == 2);
  CHECK(r.at("successes") == 1);
  CHECK(r.at("failures") == 3);
  CHECK(check_ok(healthctl({"record", seg, "groq", "success"})) ==
        "groq: healthy (success recorded)\n");

  // What the library reads agrees with what the tool wrote.
  const auto state = Table::open(seg.str()).get_state("groq");
  REQUIRE(state);
  CHECK(state->healthy);
  CHECK(state->successes == 2);
  CHECK(state->failures == 3);
}

TEST_CASE("threshold 1 trips on one failure, and a zero backoff is half-open at once") {
  SegmentName seg("cli-halfopen");
  check_ok(healthctl({"create", seg, "--failure-threshold", "1", "--backoff", "0"}));
  CHECK(check_ok(healthctl({"record", seg, "p", "failure", "--reason", "boom"})) ==
        "p: tripped (1 consecutive failure); unhealthy for 0s\n");
  const Run r = healthctl({"check", seg, "p"});
  CHECK(r.status == 0);
  CHECK(contains(r.out, "p: healthy (half-open"));
  const json doc = dump_json(seg);
  const json& p = provider(doc, "p");
  CHECK(p.at("healthy") == false);
  CHECK(p.at("available") == true);
  const std::string text = check_ok(healthctl({"dump", seg}));
  CHECK(contains(text, "half-open"));
}

/// An IMF-fixdate, as a Retry-After header carries it.
std::string http_date(std::int64_t unix_s) {
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

TEST_CASE(
    "record --class and --retry-after: cooldowns, hints that never shorten, uncounted classes") {
  SegmentName seg("cli-classes");
  check_ok(healthctl({"create", seg}));

  // A 429 with Retry-After: 30 is a cooldown, not a trip.
  CHECK(check_ok(healthctl({"record", seg, "groq", "failure", "--class", "rate_limited",
                            "--retry-after", "30", "--reason", "http 429"})) ==
        "groq: rate limited (cooldown); unavailable for 30s\n");
  json doc = dump_json(seg);
  const double until = provider(doc, "groq").at("unhealthy_until").get<double>();
  CHECK(provider(doc, "groq").at("healthy") == true);
  CHECK(provider(doc, "groq").at("available") == false);
  CHECK(provider(doc, "groq").at("consecutive_failures") == 0);
  CHECK(until - provider(doc, "groq").at("last_check").get<double>() == doctest::Approx(30.0));
  auto s = Table::open(seg.str()).get_state("groq");
  REQUIRE(s);
  CHECK(s->last_class == FailureClass::rate_limited);
  CHECK(s->last_source == Source::admin);
  CHECK(s->last_error == "http 429");
  const std::int64_t until_mono = s->unhealthy_until_mono_ns;
  const Run cooling = healthctl({"check", seg, "groq"});
  CHECK(cooling.status == 1);
  CHECK(cooling.out.starts_with("groq: unavailable (cooling down: a rate limit or retry hint, "));
  CHECK(contains(cooling.out, " left; last error: http 429)"));

  // A shorter hint later leaves the deadline where it was, a duration too.
  const std::string shorter = check_ok(healthctl(
      {"record", seg, "groq", "failure", "--class", "rate_limited", "--retry-after", "5s"}));
  CHECK(shorter.starts_with("groq: rate limited (cooldown); still unavailable for "));
  CHECK(Table::open(seg.str()).get_state("groq")->unhealthy_until_mono_ns == until_mono);

  // An HTTP date: unavailable until then (to the second the header gives).
  const std::int64_t at = Instant::now().unix_ns / 1'000'000'000 + 120;
  CHECK(check_ok(healthctl({"record", seg, "cohere", "failure", "--class", "rate_limited",
                            "--retry-after", http_date(at)}))
            .starts_with("cohere: rate limited (cooldown); unavailable for "));
  CHECK(provider(dump_json(seg), "cohere").at("unhealthy_until").get<double>() ==
        doctest::Approx(static_cast<double>(at)).epsilon(1e-9));

  // A client error says the request was wrong, not the provider: never a trip.
  for (int i = 0; i < 3; ++i)
    CHECK(check_ok(healthctl({"record", seg, "ollama", "failure", "--class", "client"})) ==
          "ollama: client error (client, not counted); still healthy\n");
  doc = dump_json(seg);
  CHECK(provider(doc, "ollama").at("available") == true);
  CHECK(provider(doc, "ollama").at("failures") == 3);
  CHECK(provider(doc, "ollama").at("consecutive_failures") == 0);

  // Counted classes say which; a hint longer than the window outlasts it.
  CHECK(check_ok(healthctl({"record", seg, "mistral", "failure", "--class", "timeout"})) ==
        "mistral: timeout, failure 1 of 2 recorded; still healthy\n");
  CHECK(check_ok(healthctl(
            {"record", seg, "mistral", "failure", "--class", "server", "--retry-after", "2m"})) ==
        "mistral: tripped (2 consecutive failures); unhealthy for 2m (retry hint)\n");
}

TEST_CASE("dump prints a header, the writer and an aligned table") {
  SegmentName seg("cli-text");
  check_ok(healthctl({"create", seg, "--slots", "8"}));
  CHECK(check_ok(healthctl({"dump", seg})).ends_with("no providers yet\n"));
  check_ok(healthctl({"record", seg, "openrouter", "success"}));
  check_ok(healthctl({"record", seg, "groq", "failure", "--reason", "http 503"}));
  check_ok(healthctl({"record", seg, "groq", "failure", "--reason", "http 503"}));
  check_ok(healthctl({"set", seg, "together", "down", "--create", "--reason", "maintenance"}));

  std::vector<std::string> lines = lines_of(check_ok(healthctl({"dump", seg})));
  REQUIRE(lines.size() == 10);
  CHECK(lines[1].starts_with("home: " + seg.home() + " -> " + seg.path() + "; "));
  CHECK(lines[3].starts_with("WARNING: no writer attached: nothing keeps this table current"));
  CHECK(lines[9].starts_with("override together: down by uid 0"));
  CHECK(lines[9].ends_with(", until set back; reason: maintenance"));
  lines.erase(lines.begin() + 9);
  lines.erase(lines.begin() + 3);
  lines.erase(lines.begin() + 1);
  CHECK(lines[0].starts_with("table '" + seg.str() + "': 3 of 8 slots used, generation 0x"));
  CHECK(lines[0].ends_with(", failure threshold 2, backoff 1m"));
  CHECK(lines[1].starts_with("writer: none attached (last: pid "));
  CHECK(lines[2].empty());
  CHECK(lines[3].starts_with("PROVIDER    AVAILABLE  HEALTHY  FAILURES  LAST CHECK"));
  // Every column starts where its heading does.
  for (const char* heading : {"AVAILABLE", "HEALTHY", "FAILURES", "LAST CHECK", "UNAVAILABLE FOR",
                              "OVERRIDE", "LAST ERROR"}) {
    CAPTURE(heading);
    const std::size_t col = lines[3].find(heading);
    REQUIRE(col != std::string::npos);
    for (std::size_t i = 4; i < lines.size(); ++i) {
      CAPTURE(lines[i]);
      REQUIRE(lines[i].size() > col);
      CHECK(lines[i][col] != ' ');
      CHECK(lines[i][col - 1] == ' ');
    }
  }
  CHECK(lines[4].starts_with("openrouter  yes        yes      0         "));
  CHECK(lines[4].ends_with("  -                auto      -"));
  CHECK(lines[5].starts_with("groq        no         no       2         "));
  CHECK(lines[5].ends_with("  auto      http 503"));
  CHECK(lines[6].starts_with("together    no         yes      0         never"));
  CHECK(lines[6].ends_with("  down      -"));
}

TEST_CASE("dump --expect adds placeholders and never overwrites a real state") {
  SegmentName seg("cli-expect");
  check_ok(healthctl({"create", seg}));
  check_ok(healthctl({"record", seg, "groq", "failure", "--reason", "timeout"}));
  const json doc = dump_json(seg, {"--expect", "ollama,groq,google"});
  REQUIRE(doc.at("providers").size() == 3);
  CHECK(doc.at("providers")[0].at("name") == "groq"); // registration order, then expected
  const json& groq = provider(doc, "groq");
  CHECK(groq.at("registered") == true);
  CHECK(groq.at("consecutive_failures") == 1);
  CHECK(groq.at("last_error") == "timeout");
  for (const char* name : {"ollama", "google"}) {
    CAPTURE(name);
    const json& p = provider(doc, name);
    CHECK(p.at("registered") == false);
    CHECK(p.at("healthy") == true);
    CHECK(p.at("available") == true);
    CHECK(p.at("consecutive_failures") == 0);
    CHECK(p.at("last_check") == 0);
    CHECK(p.at("last_error").is_null());
    CHECK(p.at("unhealthy_until") == 0);
    CHECK(p.at("override") == "auto");
  }
  const std::string text = check_ok(healthctl({"dump", seg, "--expect", "ollama"}));
  CHECK(contains(text, "not in table"));
  // --expect takes one list each time and may repeat; it never eats the NAME.
  const Run repeated = healthctl({"dump", "--expect", "a", seg, "--expect", "b,c", "--json"});
  const json names = json::parse(check_ok(repeated)).at("providers");
  REQUIRE(names.size() == 4);
  CHECK(names[1].at("name") == "a");
  CHECK(names[2].at("name") == "b");
  CHECK(names[3].at("name") == "c");
  // --expect only reads: the table itself did not grow.
  CHECK(Table::open(seg.str()).info().used == 1);
}

TEST_CASE("check: unknown providers are healthy, --quiet prints nothing") {
  SegmentName seg("cli-check");
  check_ok(healthctl({"create", seg, "--failure-threshold", "1"}));
  const Run unknown = healthctl({"check", seg, "never-seen"});
  CHECK(contains(check_ok(unknown), "never-seen: healthy (not in table"));
  check_ok(healthctl({"record", seg, "groq", "failure"}));
  const Run quiet = healthctl({"check", seg, "groq", "--quiet"});
  CHECK(quiet.status == 1);
  CHECK(quiet.out.empty());
  CHECK(quiet.err.empty());
  const Run quiet_ok = healthctl({"check", "-q", seg, "never-seen"});
  CHECK(quiet_ok.status == 0);
  CHECK(quiet_ok.out.empty());
}

TEST_CASE("route: the first available provider of the chain, and why the ones before it are not") {
  SegmentName seg("cli-route");
  check_ok(healthctl({"create", seg}));
  check_ok(healthctl({"record", seg, "openai", "failure", "--reason", "http 503"}));
  check_ok(healthctl({"record", seg, "openai", "failure", "--reason", "http 503"}));
  check_ok(healthctl({"record", seg, "groq", "success"}));
  std::string out = check_ok(healthctl({"route", seg, "openai,groq,anthropic"}));
  CHECK(count_lines(out) == 1);
  CHECK(contains(out, "groq: first available of 3 (openai unavailable for "));
  CHECK(contains(out, "s more: tripped after 2 consecutive failures, http 503)"));
  // The first provider, with nothing to skip, says only that.
  CHECK(check_ok(healthctl({"route", seg, "groq,openai"})) == "groq: first available of 2\n");
  // Unknown providers are healthy, and the answer says so.
  out = check_ok(healthctl({"route", seg, "openai,never-seen"}));
  CHECK(contains(out, "never-seen: first available of 2 (openai unavailable"));
  CHECK(contains(out, "it is not in table '" + seg.str() + "', and unknown providers are healthy"));

  const json doc = json::parse(check_ok(healthctl({"route", seg, "openai,groq", "--json"})));
  CHECK(doc.at("pick") == "groq");
  CHECK(doc.at("index") == 1);
  CHECK(doc.at("available") == true);
  CHECK(doc.at("panic") == false);
  CHECK(doc.at("reason") == "available");
  CHECK(doc.at("retry_at").is_null());
  CHECK(doc.at("chain").size() == 2);
  CHECK(doc.at("chain")[0].at("name") == "openai");
  CHECK(doc.at("chain")[0].at("available") == false);
  CHECK(doc.at("chain")[0].at("available_in").get<double>() > 30);
  CHECK(doc.at("chain")[0].at("why") == "tripped after 2 consecutive failures, http 503");
  CHECK(doc.at("chain")[1].at("available") == true);
}

TEST_CASE("route: every provider down gives a panic pick (20), or none with Retry-After (21)") {
  SegmentName seg("cli-route-down");
  check_ok(healthctl({"create", seg}));
  check_ok(healthctl({"record", seg, "openai", "failure"}));
  check_ok(healthctl({"record", seg, "openai", "failure"}));
  check_ok(healthctl({"set", seg, "groq", "down", "--create", "--reason", "maintenance"}));

  Run r = healthctl({"route", seg, "groq,openai"});
  CHECK(r.status == 20);
  CHECK(r.err.empty());
  std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(contains(lines[0], "panic pick: openai, whose window ends first (in "));
  CHECK(contains(lines[0], "); every provider of the chain is unavailable"));
  CHECK(contains(lines[1], "groq unavailable until set back: forced down by uid "));
  CHECK(contains(lines[1], ", reason 'maintenance'; 'healthctl set " + seg.str() + " groq auto'"));
  CHECK(contains(lines[2], "openai unavailable for "));

  r = healthctl({"route", seg, "groq,openai", "--policy", "none"});
  CHECK(r.status == 21);
  lines = lines_of(r.out);
  REQUIRE(lines.size() == 3);
  CHECK(contains(lines[0], "none: every provider is unavailable; retry in "));
  CHECK(contains(lines[0], " (Retry-After: "));

  json doc =
      json::parse(healthctl({"route", seg, "groq,openai", "--policy", "none", "--json"}).out);
  CHECK(doc.at("pick").is_null());
  CHECK(doc.at("reason") == "none");
  CHECK(doc.at("policy") == "none");
  // The default 60 s window, minus what this test took.
  CHECK(doc.at("retry_after").get<int>() > 30);
  CHECK(doc.at("retry_after").get<int>() <= 60);
  CHECK(doc.at("retry_at").get<double>() > 0);
  CHECK(doc.at("chain")[0].at("available_in").is_null()); // forced down, no expiry

  // Forced down with no expiry, all of them: no pick under either policy.
  check_ok(healthctl({"set", seg, "openai", "down"}));
  for (const char* policy : {"panic", "none"}) {
    CAPTURE(policy);
    r = healthctl({"route", seg, "groq,openai", "--policy", policy});
    CHECK(r.status == 21);
    CHECK(contains(r.out, "none: every provider of the chain is forced down with no expiry"));
    doc = json::parse(healthctl({"route", seg, "groq,openai", "--policy", policy, "--json"}).out);
    CHECK(doc.at("reason") == "forced_down");
    CHECK(doc.at("retry_at").is_null());
  }
}

TEST_CASE("set down/up/auto decides what check answers") {
  SegmentName seg("cli-set");
  check_ok(healthctl({"create", seg}));
  CHECK(check_ok(healthctl({"set", seg, "groq", "down", "--create"})) ==
        "groq: forced down; unavailable until 'healthctl set " + seg.str() + " groq auto'\n");
  Run r = healthctl({"check", seg, "groq"});
  CHECK(r.status == 1);
  CHECK(contains(r.out, "forced down by override"));
  CHECK(provider(dump_json(seg), "groq").at("override") == "down");

  // Trip it, then force it up: available whatever the breaker says.
  check_ok(healthctl({"record", seg, "groq", "failure"}));
  check_ok(healthctl({"record", seg, "groq", "failure"}));
  CHECK(contains(check_ok(healthctl({"set", seg, "groq", "up"})), "groq: forced up"));
  r = healthctl({"check", seg, "groq"});
  CHECK(r.status == 0);
  CHECK(r.out == "groq: healthy (forced up by override)\n");
  const json doc = dump_json(seg);
  const json& up = provider(doc, "groq");
  CHECK(up.at("healthy") == false);
  CHECK(up.at("available") == true);

  // Back to the breaker, which still has it tripped.
  CHECK(check_ok(healthctl({"set", seg, "groq", "auto"})) ==
        "groq: override cleared; the circuit breaker decides (now unavailable)\n");
  CHECK(healthctl({"check", seg, "groq"}).status == 1);
}

TEST_CASE("reset puts all, or the listed providers, back to the zero state") {
  SegmentName seg("cli-reset");
  check_ok(healthctl({"create", seg, "--failure-threshold", "1"}));
  for (const char* p : {"a", "b", "c"})
    check_ok(healthctl({"record", seg, p, "failure"}));

  CHECK(check_ok(healthctl({"reset", seg, "a", "b"})) == "reset a, b of '" + seg.str() + "'\n");
  json doc = dump_json(seg);
  CHECK(provider(doc, "a").at("healthy") == true);
  CHECK(provider(doc, "a").at("failures") == 0);
  CHECK(provider(doc, "b").at("healthy") == true);
  CHECK(provider(doc, "c").at("healthy") == false);
  const auto generation = doc.at("generation").get<std::uint64_t>();

  const std::string all = check_ok(healthctl({"reset", seg}));
  CHECK(all.starts_with("reset all 3 providers of '" + seg.str() + "'; generation now 0x"));
  doc = dump_json(seg);
  CHECK(doc.at("generation").get<std::uint64_t>() == generation + 1);
  CHECK(doc.at("providers").size() == 3); // names stay registered
  for (const json& p : doc.at("providers")) {
    CHECK(p.at("healthy") == true);
    CHECK(p.at("consecutive_failures") == 0);
    CHECK(p.at("last_check") == 0);
  }
}

TEST_CASE("reset keeps overrides, says which, and clears them with --overrides") {
  SegmentName seg("cli-reset-ovr");
  check_ok(healthctl({"create", seg}));
  check_ok(healthctl({"set", seg, "a", "down", "--create", "--reason", "maintenance"}));
  check_ok(healthctl({"set", seg, "b", "up", "--create"}));
  check_ok(healthctl({"record", seg, "c", "failure"}));

  std::string out = check_ok(healthctl({"reset", seg}));
  CHECK(out.find("; overrides kept on a, b ('healthctl reset " + seg.str() +
                 " --overrides' clears them)\n") != std::string::npos);
  json doc = dump_json(seg);
  CHECK(provider(doc, "a").at("override") == "down");
  CHECK(provider(doc, "b").at("override") == "up");
  CHECK(provider(doc, "c").at("consecutive_failures") == 0);

  CHECK(check_ok(healthctl({"reset", seg, "c"})) == "reset c of '" + seg.str() + "'\n");
  CHECK(check_ok(healthctl({"reset", seg, "a", "--overrides"})) ==
        "reset a of '" + seg.str() + "'\n");
  doc = dump_json(seg);
  CHECK(provider(doc, "a").at("override") == "auto");
  CHECK(provider(doc, "b").at("override") == "up");
  out = check_ok(healthctl({"reset", seg, "--overrides"}));
  CHECK(out.find("kept") == std::string::npos);
  CHECK(provider(dump_json(seg), "b").at("override") == "auto");
}

TEST_CASE("destroy removes the segment, and create --force replaces one") {
  SegmentName seg("cli-destroy");
  check_ok(healthctl({"create", seg}));
  check_ok(healthctl({"record", seg, "groq", "failure"}));
  const auto old_generation = Table::open(seg.str()).info().generation;

  const Run replaced = healthctl({"create", seg, "--force", "--slots", "4"});
  CHECK(check_ok(replaced).starts_with("replaced health table '" + seg.str() + "': 4 slots"));
  const json doc = dump_json(seg);
  CHECK(doc.at("providers").empty());
  CHECK(doc.at("capacity") == 4);
  CHECK(doc.at("generation").get<std::uint64_t>() != old_generation);

  CHECK(check_ok(healthctl({"destroy", seg})) ==
        "destroyed health table '" + seg.str() + "' (" + seg.home() +
            " removed; mapped readers keep the last state and follow a table created again "
            "under that name)\n");
  struct stat st {};
  CHECK(::lstat(seg.home().c_str(), &st) != 0);
  CHECK(healthctl({"info", seg}).status == 3);

  // --force with nothing to replace just creates.
  CHECK(check_ok(healthctl({"create", seg, "--force"})).starts_with("created health table"));
}

TEST_CASE("info and dump show an attached writer, and flag it STALE when its heartbeat lapses") {
  SegmentName seg("cli-stale");
  Writer w = Writer::create(seg.str());
  w.set_heartbeat_interval(10s);
  const Instant now = Instant::now();
  w.heartbeat(Instant{now.mono_ns - 100'000'000'000, now.unix_ns - 100'000'000'000});
  const std::string pid = std::to_string(::getpid());

  std::string info = check_ok(healthctl({"info", seg}));
  CHECK(contains(info, "writer      pid " + pid + " attached (holds the writer lock)"));
  CHECK(contains(info, "promised every 10s; STALE (stale after 30s)"));
  std::vector<std::string> dump = lines_of(check_ok(healthctl({"dump", seg})));
  REQUIRE(dump.size() >= 3);
  CHECK(dump[2].starts_with("writer: pid " + pid + " attached, heartbeat "));
  CHECK(dump[2].ends_with("(promised every 10s), STALE: no heartbeat for more than 30s"));
  json writer = dump_json(seg).at("writer");
  CHECK(writer.at("attached") == true);
  CHECK(writer.at("pid") == ::getpid());
  CHECK(writer.at("stale") == true);
  CHECK(writer.at("heartbeat_interval").get<double>() == doctest::Approx(10.0));
  CHECK(writer.at("stale_after").get<double>() == doctest::Approx(30.0));
  CHECK(writer.at("heartbeat_age").get<double>() >= 100.0);

  // --stale-after overrides the promise either way.
  writer = dump_json(seg, {"--stale-after", "1h"}).at("writer");
  CHECK(writer.at("stale") == false);
  CHECK(writer.at("stale_after").get<double>() == doctest::Approx(3600.0));

  // A fresh beat is not stale.
  w.heartbeat();
  info = check_ok(healthctl({"info", seg}));
  CHECK(contains(info, "; fresh (stale after 30s)"));
  CHECK(!contains(check_ok(healthctl({"dump", seg})), "STALE"));
  writer = json::parse(check_ok(healthctl({"info", seg, "--json"}))).at("writer");
  CHECK(writer.at("stale") == false);
  CHECK(writer.at("heartbeat_age").get<double>() < 30.0);

  // Once the writer is gone the kernel says so (and its promise is withdrawn).
  { Writer gone = std::move(w); }
  writer = json::parse(check_ok(healthctl({"info", seg, "--json"}))).at("writer");
  CHECK(writer.at("attached") == false);
  CHECK(writer.at("heartbeat_interval") == 0);
  CHECK(writer.at("stale") == false);
}

TEST_CASE("record keeps at most kReasonMax bytes of the reason") {
  SegmentName seg("cli-reason");
  check_ok(healthctl({"create", seg}));
  const std::string long_reason(300, 'x');
  check_ok(healthctl({"record", seg, "p", "failure", "--reason", long_reason}));
  CHECK(provider(dump_json(seg), "p").at("last_error") == std::string(kReasonMax, 'x'));
}

TEST_CASE("forget frees the slot, and the name is gone from dump") {
  SegmentName seg("cli-forget");
  check_ok(healthctl({"create", seg, "--slots", "2"}));
  check_ok(healthctl({"record", seg, "a", "failure"}));
  check_ok(healthctl({"record", seg, "b", "success"}));
  CHECK(check_ok(healthctl({"forget", seg, "a"})) ==
        "forgot a in '" + seg.str() + "'; 1 of 2 slots used\n");
  const json doc = dump_json(seg);
  REQUIRE(doc.at("providers").size() == 1);
  CHECK(doc.at("providers")[0].at("name") == "b");
  CHECK(doc.at("used") == 1);
  // The slot came back: a new name fits in a table of two.
  check_ok(healthctl({"record", seg, "c", "success"}));
  CHECK(healthctl({"forget", seg, "a"}).status == 14);
}

TEST_CASE("grow keeps every state and info shows the new capacity") {
  SegmentName seg("cli-grow");
  check_ok(healthctl({"create", seg, "--slots", "2", "--failure-threshold", "1"}));
  check_ok(healthctl({"record", seg, "a", "failure", "--reason", "http 503"}));
  check_ok(healthctl({"record", seg, "b", "success"}));
  check_ok(healthctl({"set", seg, "b", "down", "--reason", "maint"}));
  const std::string old_object = seg.path();
  json before = dump_json(seg);
  CHECK(contains(check_ok(healthctl({"grow", seg, "--slots", "8"})),
                 "grew '" + seg.str() + "' to 8 slots"));
  CHECK(seg.path() != old_object);
  json after = dump_json(seg);
  CHECK(after.at("capacity") == 8);
  CHECK(before.at("capacity") == 2);
  // Everything but the capacity, the object, the clock and the event count is equal.
  for (json* d : {&before, &after})
    for (const char* k : {"capacity", "object", "time", "events", "writer", "generation"})
      d->erase(k);
  CHECK(before == after);
  const json info = json::parse(check_ok(healthctl({"info", seg, "--json"})));
  CHECK(info.at("capacity") == 8);
  CHECK(info.at("used") == 2);
}
