-- One directory page in one call: the loose index scan of crates/pg-diesel/src/store/listing.rs
-- run inside PostgreSQL, so a page of n entries costs n-ish index probes of a few microseconds
-- each instead of as many client round trips (~3 per entry).
--
-- list_children(bucket, dir, upper, after, limit) returns the first `limit` children of `dir`
-- (which ends with '/'; `upper` is its exclusive bound: `dir` with the final '/' replaced by
-- '0') whose names sort strictly after `after` (NULL: from the start), in name order: files and
-- sub-directories together, a file before the directory of the same name. See listing.rs for
-- why the scan checks the directories named by the prefixes of a name cut before a byte below
-- '/'. Every comparison is byte-wise (COLLATE "C"), as the paths are.
CREATE FUNCTION list_children(p_bucket text, p_dir text, p_upper text, p_after text,
                              p_limit integer)
RETURNS TABLE (entry_name text, entry_is_dir boolean)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    dir       text COLLATE "C" := p_dir;
    upper_b   text COLLATE "C" := p_upper;
    -- 0: start; 1: past every entry named `pos`; 2: the file `pos` was just listed.
    state     smallint := CASE WHEN p_after IS NULL THEN 0 ELSE 1 END;
    pos       text COLLATE "C" := p_after;
    cursor_n  text COLLATE "C";
    base      text COLLATE "C";
    hit       text COLLATE "C";
    child     text COLLATE "C";
    rest      text COLLATE "C";
    nm        text COLLATE "C";
    shorter   text COLLATE "C";
    is_dir    boolean;
    slash     integer;
    emitted   integer := 0;
    k         integer;
BEGIN
    WHILE emitted < p_limit LOOP
        IF state = 2 THEN
            -- A directory of the same name as the file just listed comes right after it.
            PERFORM 1 FROM files f
             WHERE f.bucket = p_bucket AND f.path >= dir || pos || '/' AND f.path < dir || pos || '0'
             LIMIT 1;
            IF FOUND THEN
                entry_name := pos; entry_is_dir := true; RETURN NEXT;
                emitted := emitted + 1;
            END IF;
            state := 1;
            CONTINUE;
        END IF;

        -- The smallest path under `dir` whose child name sorts after the cursor.
        cursor_n := CASE WHEN state = 1 THEN pos END;
        IF cursor_n IS NULL THEN
            SELECT f.path INTO hit FROM files f
             WHERE f.bucket = p_bucket AND f.path > dir AND f.path < upper_b
             ORDER BY f.path LIMIT 1;
        ELSE
            -- Longer names continuing with a byte below '/' lie between dir||name and
            -- dir||name||'/'; every other greater name is at or after dir||name||'0'.
            base := dir || cursor_n;
            SELECT f.path INTO hit FROM files f
             WHERE f.bucket = p_bucket AND f.path > base AND f.path < base || '/'
             ORDER BY f.path LIMIT 1;
            IF hit IS NULL THEN
                SELECT f.path INTO hit FROM files f
                 WHERE f.bucket = p_bucket AND f.path >= base || '0' AND f.path < upper_b
                 ORDER BY f.path LIMIT 1;
            END IF;
            -- Skip the subtrees of directories named by a prefix of the cursor.
            WHILE hit IS NOT NULL LOOP
                rest := substr(hit, length(dir) + 1);
                slash := strpos(rest, '/');
                child := CASE WHEN slash > 0 THEN left(rest, slash - 1) ELSE rest END;
                EXIT WHEN child > cursor_n;
                SELECT f.path INTO hit FROM files f
                 WHERE f.bucket = p_bucket AND f.path >= dir || child || '0' AND f.path < upper_b
                 ORDER BY f.path LIMIT 1;
            END LOOP;
        END IF;
        EXIT WHEN hit IS NULL;

        rest := substr(hit, length(dir) + 1);
        slash := strpos(rest, '/');
        is_dir := slash > 0;
        nm := CASE WHEN is_dir THEN left(rest, slash - 1) ELSE rest END;

        -- The first directory named by a prefix of `nm` cut before a byte below '/' (those
        -- bytes are ASCII, so a character position is a byte boundary) sorts before `nm`.
        shorter := NULL;
        FOR k IN 2 .. length(nm) LOOP
            IF substr(nm, k, 1) < '/' COLLATE "C" THEN
                IF cursor_n IS NULL OR left(nm, k - 1) > cursor_n THEN
                    PERFORM 1 FROM files f
                     WHERE f.bucket = p_bucket
                       AND f.path >= dir || left(nm, k - 1) || '/'
                       AND f.path < dir || left(nm, k - 1) || '0'
                     LIMIT 1;
                    IF FOUND THEN
                        shorter := left(nm, k - 1);
                        EXIT;
                    END IF;
                END IF;
            END IF;
        END LOOP;

        IF shorter IS NOT NULL THEN
            entry_name := shorter; entry_is_dir := true; pos := shorter; state := 1;
        ELSIF is_dir THEN
            entry_name := nm; entry_is_dir := true; pos := nm; state := 1;
        ELSE
            entry_name := nm; entry_is_dir := false; pos := nm; state := 2;
        END IF;
        RETURN NEXT;
        emitted := emitted + 1;
    END LOOP;
END;
$$;
