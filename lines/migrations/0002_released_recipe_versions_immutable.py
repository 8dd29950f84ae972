from django.db import migrations

# A released recipe version never changes: every process run keeps the version it ran under, so
# the limits a cell was judged against must stay as they were. The only change a released version
# may take is released -> superseded; its parameters are frozen once it leaves draft.
SQL = """
CREATE FUNCTION lines_recipeversion_frozen() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'recipe version % is % and cannot be deleted', OLD.id, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'draft' AND NEW.status IN ('draft', 'released') THEN
        RETURN NEW;
    END IF;
    IF OLD.status = 'released' AND NEW.status = 'superseded'
       AND (NEW.recipe_id, NEW.version, NEW.note, NEW.created_at, NEW.released_at, NEW.released_by_id)
           IS NOT DISTINCT FROM
           (OLD.recipe_id, OLD.version, OLD.note, OLD.created_at, OLD.released_at, OLD.released_by_id)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'recipe version % is % and cannot change', OLD.id, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER lines_recipeversion_frozen BEFORE UPDATE OR DELETE ON lines_recipeversion
    FOR EACH ROW EXECUTE FUNCTION lines_recipeversion_frozen();

CREATE FUNCTION lines_recipeparameter_frozen() RETURNS trigger AS $$
DECLARE
    version_status text;
BEGIN
    SELECT status INTO version_status FROM lines_recipeversion
        WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.version_id ELSE NEW.version_id END;
    IF version_status <> 'draft' OR (TG_OP = 'UPDATE' AND OLD.version_id <> NEW.version_id) THEN
        RAISE EXCEPTION 'parameters of a % recipe version cannot change', version_status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER lines_recipeparameter_frozen BEFORE INSERT OR UPDATE OR DELETE ON lines_recipeparameter
    FOR EACH ROW EXECUTE FUNCTION lines_recipeparameter_frozen();
"""
REVERSE = """
DROP TRIGGER lines_recipeparameter_frozen ON lines_recipeparameter;
DROP FUNCTION lines_recipeparameter_frozen();
DROP TRIGGER lines_recipeversion_frozen ON lines_recipeversion;
DROP FUNCTION lines_recipeversion_frozen();
"""


class Migration(migrations.Migration):
    dependencies = [("lines", "0001_initial")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
