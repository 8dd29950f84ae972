from django.db import migrations

# Passports already issued quote a master-data version: it never changes once released. The only
# change it may take is released -> superseded, and it is never deleted.
SQL = """
CREATE FUNCTION analytics_passportmasterdata_frozen() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'released' AND NEW.status = 'superseded'
       AND (to_jsonb(NEW) - 'status') = (to_jsonb(OLD) - 'status')
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'passport master data % is % and cannot change', OLD.id, OLD.status
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER analytics_passportmasterdata_frozen
    BEFORE UPDATE OR DELETE ON analytics_passportmasterdata
    FOR EACH ROW EXECUTE FUNCTION analytics_passportmasterdata_frozen();
"""
REVERSE = """
DROP TRIGGER analytics_passportmasterdata_frozen ON analytics_passportmasterdata;
DROP FUNCTION analytics_passportmasterdata_frozen();
"""


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_passport_master_data")]
    operations = [migrations.RunSQL(SQL, REVERSE)]
