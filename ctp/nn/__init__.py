"""Networks: the temporal U-Net (teacher and student backbone), the critic, their blocks; the
MLP and the SAC behaviour actor."""

from ctp.nn.critic import Critic
from ctp.nn.unet import TemporalUNet, UNetConfig

__all__ = ["Critic", "TemporalUNet", "UNetConfig"]
