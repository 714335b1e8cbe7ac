"""Study planning: analytic power, minimum detectable effect sizes and sample sizes."""
