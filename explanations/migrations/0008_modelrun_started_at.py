from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("explanations", "0007_job_share")]

    operations = [
        migrations.AddField(
            model_name="modelrun",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
