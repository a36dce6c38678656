"""The professionals' pages: dashboard, patient record, enrolment; thin views over services."""
