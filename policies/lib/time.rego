# METADATA
# title: RFC 3339 timestamps in plain Rego
# description: |
#   Parses RFC 3339 date-times (`2026-11-22T10:00:00Z`, `…T11:00:00.250+01:00`) into
#   milliseconds since the Unix epoch, without the time.* builtins: they are not native to
#   OPA's WASM target, and the compiled policy must need no host-provided builtin.
#
#   Strict: the RFC 3339 §5.6 `date-time` production only (four-digit year, two-digit fields,
#   `T` and `Z` in either case, fractional seconds of any length, `Z` or a `±hh:mm` offset),
#   with calendar checks (month lengths, leap years, hour ≤ 23, minute ≤ 59, second ≤ 60).
#   Anything else is undefined, so callers fail closed. Fractions below a millisecond are
#   truncated; a leap second (`:60`) counts as the first second of the next minute.
package smart.lib.time

digit := {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9}

# RFC 3339 §5.6 date-time. ABNF literals are case-insensitive, so `t` and `z` are accepted.

# METADATA
# title: epoch_millis
# description: |
#   Milliseconds since 1970-01-01T00:00:00Z for an RFC 3339 date-time; undefined when `s` is
#   not one (wrong type, wrong format, or an impossible date or time).
epoch_millis(s) := ms if {
	p := parse(s)
	seconds := ((days_from_civil(p.year, p.month, p.day) * 86400) + (p.hour * 3600)) + ((p.minute * 60) + p.second)
	ms := ((seconds - (p.offset_minutes * 60)) * 1000) + p.millis
}

# Whole seconds since the epoch (fractions truncated towards the past).
epoch_seconds(s) := floor_div(epoch_millis(s), 1000)

# Integer division rounding towards the past, for b > 0. OPA's floor() is only used on
# non-negative numbers here: on (-1, 0) it returns 0 in this OPA version, which would also make
# the result depend on the runtime.
floor_div(a, b) := floor(a / b) if a >= 0

floor_div(a, b) := 0 - floor(((0 - a) + (b - 1)) / b) if a < 0

# METADATA
# title: parse
# description: |
#   The fields of an RFC 3339 date-time: {year, month, day, hour, minute, second, millis,
#   offset_minutes}; undefined when `s` is not a valid one.
parse(s) := p if {
	date_time_shape(s)
	rest := substring(s, 19, -1)
	zone := zone_part(rest)
	fraction_shape(substring(rest, 0, count(rest) - count(zone)))
	zone_shape(zone)
	p := {
		"year": int_of(substring(s, 0, 4)),
		"month": int_of(substring(s, 5, 2)),
		"day": int_of(substring(s, 8, 2)),
		"hour": int_of(substring(s, 11, 2)),
		"minute": int_of(substring(s, 14, 2)),
		"second": int_of(substring(s, 17, 2)),
		"millis": millis_of(substring(rest, 0, count(rest) - count(zone))),
		"offset_minutes": offset_minutes(zone),
	}
	valid_fields(p)
}

# yyyy-mm-ddThh:mm:ss at the start (RFC 3339 date-time, "T" in either case), checked character
# class by character class: a regular expression is compiled on every evaluation in WASM and
# costs more than the whole decision around it.
date_time_shape(s) if {
	is_string(s)
	count(s) >= 20
	digits(substring(s, 0, 4))
	substring(s, 4, 1) == "-"
	digits(substring(s, 5, 2))
	substring(s, 7, 1) == "-"
	digits(substring(s, 8, 2))
	upper(substring(s, 10, 1)) == "T"
	digits(substring(s, 11, 2))
	substring(s, 13, 1) == ":"
	digits(substring(s, 14, 2))
	substring(s, 16, 1) == ":"
	digits(substring(s, 17, 2))
}

# Nothing, or "." and at least one digit.
fraction_shape("")

fraction_shape(f) if {
	startswith(f, ".")
	digits(substring(f, 1, -1))
}

zone_shape(zone) if upper(zone) == "Z"

zone_shape(zone) if {
	count(zone) == 6
	substring(zone, 0, 1) in {"+", "-"}
	digits(substring(zone, 1, 2))
	substring(zone, 3, 1) == ":"
	digits(substring(zone, 4, 2))
}

digits(x) if {
	x != ""
	trim(x, "0123456789") == ""
}

valid_fields(p) if {
	p.month >= 1
	p.month <= 12
	p.day >= 1
	p.day <= days_in_month(p.year, p.month)
	p.hour <= 23
	p.minute <= 59
	p.second <= 60
}

# The zone designator at the end of what follows the seconds: "Z", "z" or "±hh:mm".
zone_part(rest) := substring(rest, count(rest) - 1, 1) if upper(substring(rest, count(rest) - 1, 1)) == "Z"

zone_part(rest) := substring(rest, count(rest) - 6, 6) if upper(substring(rest, count(rest) - 1, 1)) != "Z"

offset_minutes(zone) := 0 if upper(zone) == "Z"

offset_minutes(zone) := m if {
	upper(zone) != "Z"
	hours := int_of(substring(zone, 1, 2))
	minutes := int_of(substring(zone, 4, 2))
	hours <= 23
	minutes <= 59
	m := offset_sign(substring(zone, 0, 1)) * ((hours * 60) + minutes)
}

offset_sign("+") := 1

offset_sign("-") := -1

# "" (no fraction) or ".ddd…": the first three digits, right-padded with zeros.
millis_of("") := 0

millis_of(fraction) := int_of(substring(concat("", [substring(fraction, 1, -1), "000"]), 0, 3)) if {
	startswith(fraction, ".")
}

# Two-, three- and four-digit decimal fields (callers have checked the digits).
int_of(str) := two_digit(str) if count(str) == 2

int_of(str) := (two_digit(substring(str, 0, 2)) * 10) + digit[substring(str, 2, 1)] if count(str) == 3

int_of(str) := (two_digit(substring(str, 0, 2)) * 100) + two_digit(substring(str, 2, 2)) if count(str) == 4

two_digit(str) := (digit[substring(str, 0, 1)] * 10) + digit[substring(str, 1, 1)]

leap_year(y) if {
	y % 4 == 0
	y % 100 != 0
}

leap_year(y) if y % 400 == 0

days_in_month(y, 2) := 29 if leap_year(y)

days_in_month(y, 2) := 28 if not leap_year(y)

days_in_month(_, m) := 31 if m in {1, 3, 5, 7, 8, 10, 12}

days_in_month(_, m) := 30 if m in {4, 6, 9, 11}

# METADATA
# title: days_from_civil
# description: |
#   Days from 1970-01-01 to the proleptic Gregorian date y-m-d (Howard Hinnant's
#   days_from_civil: years are counted from March so the leap day ends the year).
days_from_civil(y, m, d) := days if {
	# One extra era (400 years, 146097 days) keeps every division non-negative for year 0000.
	y_adj := (y + 400) - march_year_shift(m)
	era := floor(y_adj / 400)
	yoe := y_adj - (era * 400)
	doy := floor(((153 * month_from_march(m)) + 2) / 5) + (d - 1)
	doe := (((yoe * 365) + floor(yoe / 4)) - floor(yoe / 100)) + doy
	days := (((era - 1) * 146097) + doe) - 719468
}

march_year_shift(m) := 1 if m <= 2

march_year_shift(m) := 0 if m > 2

month_from_march(m) := m + 9 if m <= 2

month_from_march(m) := m - 3 if m > 2
