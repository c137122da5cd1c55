-- The header of one length-delimited field-2 record of `len` bytes (tag 0x12, then the length
-- as a protobuf varint, at most 3 bytes for items of at most 2 MiB): the log's reader frames
-- items in SQL as it reads them, so a run of them is forwarded as one piece of bytes
-- (nudgelib/eventlog/framing.py).
CREATE FUNCTION pb_item_header(len integer) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN len < 128 THEN set_byte('\x1200'::bytea, 1, len)
        WHEN len < 16384 THEN set_byte(set_byte('\x120000'::bytea, 1, (len & 127) | 128), 2, len >> 7)
        ELSE set_byte(set_byte(set_byte('\x12000000'::bytea, 1, (len & 127) | 128),
                               2, ((len >> 7) & 127) | 128), 3, len >> 14)
    END
$$;
