// Distances by Simpson integration of 1/E(z) (error < 1e-9 relative with 4096 steps).
#include "data/lens/cosmology.h"

#include <cmath>

namespace halo::data::lens {

namespace {
constexpr double kC = 299792.458;           // km/s
// G M_sun in Mpc (km/s)^2. Sigma_cr uses lenstronomy's constants (G 6.67384e-11, M_sun 1.989e30 kg,
// Mpc 3.08567758e22 m) for parity with it; astropy's (CODATA 2018, IAU 2015), which DeepLenseSim's
// Einstein-radius formula used, give a 2.8e-4 larger Sigma_cr.
constexpr double kG = 6.67384e-11 * 1.989e30 / 3.08567758e22 / 1e6;
constexpr double kG_astropy = 4.300917270036279e-9;
constexpr double kArcsec = M_PI / 180.0 / 3600.0;
}  // namespace

double Cosmology::E(double z) const {
  const double a = 1 + z;
  return std::sqrt(Om0 * a * a * a + (1 - Om0));
}

double Cosmology::comoving_distance(double z) const {
  const int n = 4096;  // even
  const double h = z / n;
  double s = 1 / E(0) + 1 / E(z);
  for (int i = 1; i < n; ++i) s += (i % 2 ? 4.0 : 2.0) / E(i * h);
  return kC / H0 * s * h / 3;
}

double Cosmology::angular_diameter_distance(double z1, double z2) const {
  return (comoving_distance(z2) - comoving_distance(z1)) / (1 + z2);
}

double Cosmology::luminosity_distance(double z) const { return comoving_distance(z) * (1 + z); }

double sigma_crit_arcsec2(const Cosmology& c, double z_l, double z_s) {
  const double dl = c.angular_diameter_distance(0, z_l), ds = c.angular_diameter_distance(0, z_s);
  const double dls = c.angular_diameter_distance(z_l, z_s);
  const double sigma_mpc2 = kC * kC * ds / (4 * M_PI * kG * dl * dls);
  return sigma_mpc2 * (dl * kArcsec) * (dl * kArcsec);
}

double point_mass_theta_e(const Cosmology& c, double mass, double z_l, double z_s) {
  return std::sqrt(mass / (M_PI * sigma_crit_arcsec2(c, z_l, z_s)));
}

double deeplense_theta_e(const Cosmology& c, double mass, double z_l, double z_s) {
  const double dl = c.luminosity_distance(z_l), ds = c.luminosity_distance(z_s);
  const double rs = 4 * kG_astropy * mass / (kC * kC);  // Schwarzschild-like length 4GM/c^2 in Mpc
  return std::sqrt(rs * (ds - dl) / (dl * ds)) / kArcsec;
}

}  // namespace halo::data::lens
