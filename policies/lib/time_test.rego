package smart.lib.time_test

import data.smart.lib.time

# Expected values computed independently (Python's datetime, proleptic Gregorian, UTC).
known_instants := [
	["1970-01-01T00:00:00Z", 0],
	["2026-11-22T10:00:00Z", 1795341600000],
	["2000-02-29T23:59:59.999Z", 951868799999],
	["1900-03-01T00:00:00Z", -2203891200000],
	["0001-01-01T00:00:00Z", -62135596800000],
	["9999-12-31T23:59:59Z", 253402300799000],
	["1969-12-31T23:59:59Z", -1000],
	["2024-02-29T12:00:00+05:30", 1709188200000],
	["2026-11-22T11:00:00.25+01:00", 1795341600250],
	["2026-11-22T04:00:00-06:00", 1795341600000],
	["2026-01-01t00:00:00z", 1767225600000],
	["1600-02-29T00:00:00Z", -11670998400000],
	["6826-08-21T05:37:59Z", 153260660279000],
	["0906-03-17T17:54:24Z", -33570050736000],
	["1707-03-01T01:47:23Z", -8294393557000],
	["3744-10-27T01:08:05Z", 56007940085000],
	["1503-03-25T21:15:04Z", -14729913896000],
	["7273-06-06T22:25:30Z", 167360163930000],
	["4093-07-27T14:54:07Z", 67013448847000],
	["9540-06-30T05:49:13Z", 238901723353000],
	["1011-06-30T20:25:10Z", -30247529690000],
	["9912-11-21T10:55:43Z", 250653351343000],
	["1082-09-13T18:06:33Z", -28000446807000],
	["0871-08-08T17:04:20Z", -34662063340000],
]

test_known_instants_convert_to_epoch_milliseconds if {
	wrong := [[s, want, object.get({"got": time.epoch_millis(s)}, "got", "undefined")] |
		some [s, want] in known_instants
		not time.epoch_millis(s) == want
	]
	print("wrong conversions:", wrong)
	count(wrong) == 0
}

test_offsets_name_the_same_instant if {
	time.epoch_millis("2026-11-22T10:00:00Z") == time.epoch_millis("2026-11-22T11:00:00+01:00")
	time.epoch_millis("2026-11-22T10:00:00Z") == time.epoch_millis("2026-11-22T04:00:00-06:00")
	time.epoch_millis("2026-11-22T10:00:00Z") == time.epoch_millis("2026-11-22T10:00:00-00:00")
	time.epoch_millis("2026-11-22T00:30:00+01:00") == time.epoch_millis("2026-11-21T23:30:00Z")
}

test_fractional_seconds_keep_milliseconds_and_truncate_the_rest if {
	time.epoch_millis("1970-01-01T00:00:00.5Z") == 500
	time.epoch_millis("1970-01-01T00:00:00.05Z") == 50
	time.epoch_millis("1970-01-01T00:00:00.123456789Z") == 123
	time.epoch_millis("1970-01-01T00:00:00.0009Z") == 0
	time.epoch_millis("1970-01-01T00:00:01.000Z") == 1000
}

test_epoch_seconds_truncate_towards_the_past if {
	time.epoch_seconds("1970-01-01T00:00:01.999Z") == 1
	time.epoch_seconds("1969-12-31T23:59:59.5Z") == -1
	time.epoch_seconds("2026-11-22T10:00:00Z") == 1795341600
}

test_leap_days_follow_the_gregorian_rules if {
	time.parse("2024-02-29T00:00:00Z")
	time.parse("2000-02-29T00:00:00Z")
	time.parse("1600-02-29T00:00:00Z")
	not time.parse("2023-02-29T00:00:00Z")
	not time.parse("1900-02-29T00:00:00Z")
	not time.parse("2100-02-29T00:00:00Z")
	not time.parse("2024-02-30T00:00:00Z")
}

test_month_lengths_are_checked if {
	time.parse("2026-01-31T00:00:00Z")
	time.parse("2026-04-30T00:00:00Z")
	not time.parse("2026-04-31T00:00:00Z")
	not time.parse("2026-06-31T00:00:00Z")
	not time.parse("2026-09-31T00:00:00Z")
	not time.parse("2026-11-31T00:00:00Z")
	time.parse("2026-12-31T00:00:00Z")
}

test_a_leap_second_counts_as_the_next_minute if {
	time.epoch_millis("2016-12-31T23:59:60Z") == time.epoch_millis("2017-01-01T00:00:00Z")
}

test_parse_returns_every_field if {
	time.parse("2026-11-22T11:05:07.25+01:30") == {
		"year": 2026, "month": 11, "day": 22, "hour": 11, "minute": 5, "second": 7,
		"millis": 250, "offset_minutes": 90,
	}
	time.parse("2026-11-22T11:05:07-02:00").offset_minutes == -120
}

test_malformed_timestamps_are_undefined if {
	bad := [
		"", "2026-11-22", "10:00:00Z", "2026-11-22T10:00:00", "2026-11-22 10:00:00Z",
		"2026-11-22T10:00Z", "2026-11-22T10:00:00+0100", "2026-11-22T10:00:00+01",
		"2026-11-22T10:00:00.Z", "2026-11-22T10:00:00,5Z", "26-11-22T10:00:00Z",
		"2026-1-22T10:00:00Z", "2026-11-2T10:00:00Z", "+2026-11-22T10:00:00Z",
		"2026-11-22T10:00:00ZZ", " 2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z ",
		"2026-11-22T10:00:00UTC", "2026-11-22T10:00:00GMT", "2026-11-22T10:00:00z\n",
		"2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-00T00:00:00Z",
		"2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z", "2026-11-22T10:00:61Z",
		"2026-11-22T10:00:00+24:00", "2026-11-22T10:00:00+01:60", "２０２６-11-22T10:00:00Z",
		"2026-11-22T10:00:00.１Z",
	]
	accepted := [s | some s in bad; time.epoch_millis(s)]
	print("accepted malformed:", accepted)
	count(accepted) == 0
}

test_non_strings_are_undefined if {
	every x in [null, 1795341600, true, ["2026-11-22T10:00:00Z"], {"t": "2026-11-22T10:00:00Z"}] {
		not time.epoch_millis(x)
	}
}

test_days_from_civil_counts_from_the_epoch if {
	time.days_from_civil(1970, 1, 1) == 0
	time.days_from_civil(1970, 1, 2) == 1
	time.days_from_civil(1969, 12, 31) == -1
	time.days_from_civil(2000, 3, 1) == 11017
	time.days_from_civil(0, 3, 1) == -719468
}

test_year_zero_before_march_is_counted if {
	time.days_from_civil(0, 1, 1) == -719528
	time.days_from_civil(0, 2, 29) == -719469
	time.epoch_millis("0000-01-01T00:00:00Z") == -62167219200000
}

test_floor_div_rounds_towards_the_past if {
	time.floor_div(1999, 1000) == 1
	time.floor_div(-1, 1000) == -1
	time.floor_div(-1000, 1000) == -1
	time.floor_div(-1001, 1000) == -2
	time.floor_div(0, 1000) == 0
}
