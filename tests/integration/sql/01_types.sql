-- Result sets of many types, NULLs, zero rows, wide and unicode values.
SELECT 1 AS int4, 2::int8 AS int8, 3::int2 AS int2, 1.5::float8 AS f8,
       2.25::float4 AS f4, 123.456::numeric(10,3) AS num, true AS b, false AS f,
       'text'::text AS t, 'vc'::varchar(10) AS vc, 'c'::char(3) AS ch, 'nm'::name AS nm;
SELECT -2147483648::int4 AS minint, 9223372036854775807::int8 AS maxint8,
       'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, '-Infinity'::float4 AS ninf,
       1e-300::float8 AS tiny, 12345678901234567890.123456789::numeric AS bignum,
       'NaN'::numeric AS numnan, 0.1::float4 + 0.2::float4 AS fsum;
SELECT date '2024-01-02' AS d, timestamp '2024-01-02 03:04:05.678' AS ts,
       timestamptz '2024-01-02 03:04:05+02' AS tstz,
       interval '1 year 2 mons 3 days 04:05:06.5' AS iv, time '12:34:56' AS tm,
       timetz '12:34:56+05:30' AS ttz, date 'infinity' AS dinf;
SELECT '\xdeadbeef'::bytea AS by, ''::bytea AS emptyby, ARRAY[1,2,NULL,4] AS arr,
       ARRAY[['a','b'],['c',NULL]] AS arr2, '{}'::int[] AS emptyarr,
       '{"a":[1,2,{"b":null}],"c":"ü"}'::jsonb AS j, '{"x": 1}'::json AS js,
       'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
       '192.168.0.1/24'::inet AS ip, '10.0.0.0/8'::cidr AS net,
       '08:00:2b:01:02:03'::macaddr AS mac, B'10101' AS bits, 42::oid AS oid,
       'int4'::regtype AS rt, point(1.5, 2) AS pt, box(point(0,0), point(1,1)) AS bx,
       int4range(1, 10) AS r, '[2024-01-01,2024-02-01)'::daterange AS dr,
       'a fat cat'::tsvector AS tsv, 'fat & cat'::tsquery AS tsq, 12.34::money AS m,
       xml '<a>b</a>' AS x;
SELECT 'héllo wörld ☃ 日本語 🐘' AS utf8, ''::text AS empty, ' lead and trail ' AS spaces,
       E'tab\there' AS tab, E'new\nline' AS newline, E'back\\slash' AS bs,
       'quote''s "double"' AS quotes, length('🐘🐘') AS len, octet_length('🐘') AS octets;
-- NULLs
SELECT NULL AS n1, NULL::int AS n2, 'x' AS notnull, NULL::text AS n3, NULL::bytea AS n4;
SELECT * FROM (VALUES (1, 'one', NULL), (2, NULL, 2.5), (NULL, 'three', 3.5)) AS v(a, b, c);
SELECT NULL IS NULL AS isnull, NULL = NULL AS eqnull, coalesce(NULL, 'dflt') AS co;
-- zero rows, zero columns, many rows, many columns
SELECT 1 AS nothing WHERE false;
SELECT;
SELECT FROM generate_series(1, 3);
SELECT g, g * g AS sq, repeat('*', g) AS bar FROM generate_series(1, 25) g;
SELECT g AS c1, g+1 AS c2, g+2 AS c3, g+3 AS c4, g+4 AS c5, g+5 AS c6, g+6 AS c7,
       g+7 AS c8, g+8 AS c9, g+9 AS c10, g+10 AS c11, g+11 AS c12 FROM generate_series(1, 3) g;
SELECT count(*), sum(g), min(md5(g::text)), max(md5(g::text)) FROM generate_series(1, 100000) g;
SELECT repeat('abcdefghij', 10000) = repeat('abcdefghij', 10000) AS big_eq,
       length(repeat('xyz', 100000)) AS big_len;
SELECT md5(string_agg(md5(g::text), ',')) FROM generate_series(1, 5000) g;
-- records and composite types
SELECT ROW(1, 'a', NULL) AS rec, (1, 2)::record IS NOT NULL AS notnullrec;
-- expanded and other output formats
\x on
SELECT 1 AS a, 'two' AS b, NULL AS c;
\x off
\pset format unaligned
SELECT 1 AS a, 'two' AS b;
\pset format csv
SELECT 1 AS a, 'two, with comma' AS b, E'q"uote' AS c;
\pset format aligned
\pset null '(null)'
SELECT NULL AS shown_as_null;
\pset null ''
