import sys

from learner_service.main import main

sys.exit(main())
