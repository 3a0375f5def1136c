"""The report site: charts (altair specs), readable definitions and the HTML pages. Pure
rendering: steps.report gathers the data from the warehouse."""
