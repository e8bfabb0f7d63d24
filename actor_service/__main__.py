import sys

from actor_service.main import main

sys.exit(main())
