"""The care pathway: drug catalogue, prescriptions and regimens, enrolment and sequences."""
