"""Developer tooling: the SMTP catcher, the Airflow environment for the offline stack, the demo."""
