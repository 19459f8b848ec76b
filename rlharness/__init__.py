"""The training machinery that DDPG/ and SAC/ share, one module per concern.

None of it is in the lecture's algorithm boxes: it is what the lecture's scripts grow into once they must run
anywhere, resume after a crash and fail politely. Imports run one way, from the bottom of this list up:

    errors       UsageError, TrainingDiverged, WriteFailed (what main_*.py turns into one line and an exit code)
    files        atomic writes (a failed one named with its cause), data-only checkpoint reads, writable folders
    locks        one training run per checkpoint folder; checkpoint swaps that a reader never sees half done
    memory       a replay buffer or networks larger than the memory there is, refused before allocating
    envs         gymnasium or gym, make_env (the lecture's env names, gym's particle fix, MuJoCo off-screen)
    seeding      seed_everything and the state of every random generator a run draws from
    checkpoints  saved agents (one state_dict per network plus agent.json), folder swaps, the training state
    cli          flags generated from a config dataclass, --resume's flags, devices, run_main
    plots        running_mean, the scores CSV and the figure helpers
    diagnostics  the critic's estimate beside the return obtained (maximization bias) and the agent's records
    evaluation   --evaluate: deterministic episodes, a GIF of the first
    signals      StopRequest: Ctrl-C, SIGTERM and SIGHUP stop a run cleanly
    run          TrainingRun: the folder's lock, best/ and latest/ saves, --resume, the CSVs, curve, critic record
    gpu          training on CUDA: the replay buffer on the device, learn() captured as a CUDA graph

It never asks what kind of agent it holds. An agent answers through these methods and attributes:
choose_action(observation, evaluate), save_models(dir), load_models(dir), parts() (its networks and optimisers
by file name), memory (the replay buffer), device, critic_estimates(states) with critic_labels,
diagnostics(states), rng_state() and set_rng_state(states). On CUDA, memory is a gpu.DeviceReplayBuffer.
"""
