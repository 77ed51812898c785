"""Speed of course_ad against its peers, all measured in the same run (``make bench``)."""
