"""The application: settings, the instance folder, the SQL store, whole-volume steps and first start."""
